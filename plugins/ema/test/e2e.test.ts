import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { assertNoLeak, cleanup, runSteps } from '@tricks/helper-plugin-test-runner';

describe('ema in a real training run (digits, small-cnn)', function () {
  this.timeout(60000);
  it('updates every step, evaluates the EMA weights at epoch end, checkpoints its state, leaks nothing', async () => {
    const run = await runSteps({ plugins: [['ema', { decay: 0.9, export: 'always' }]], steps: 4, config: { checkpoint: true } });
    try {
      assertNoLeak(run);
      const m = run.result.epochs[0]!;
      expect(m.ema_val_top1).to.be.a('number').within(0, 1);
      expect(m.ema_val_loss).to.be.a('number');
      expect(run.result.artifacts.at(-1)!.dir).to.equal(join(run.out, 'model-ema'));
      expect(existsSync(join(run.out, 'model-ema', 'model.json'))).to.equal(true);
      expect(existsSync(join(run.out, 'checkpoint', 'plugins.bin'))).to.equal(true);
    } finally {
      cleanup(run);
    }
  });
});
