import { expect } from 'chai';
import { assertNoLeak, assertOptionError, cleanup, runSteps, tapsOf } from '@tricks/helper-plugin-test-runner';

describe('label-smoothing in a real training run (digits, small-cnn)', function () {
  this.timeout(60000);
  it('taps the loss hook every step, raises the loss floor, leaks nothing', async () => {
    const base = await runSteps({ steps: 4, config: { seed: 1 } });
    const run = await runSteps({ plugins: [['label-smoothing', { epsilon: 0.3 }]], steps: 4, config: { seed: 1 } });
    try {
      expect(tapsOf(run.calls, 'loss').filter((t) => t === 'label-smoothing')).to.have.length(4);
      assertNoLeak(run);
      // same seed, same first batch: smoothed CE >= plain CE (uniform mass costs at least log K of entropy)
      expect(run.result.epochs[0]!.train_loss).to.be.greaterThan(base.result.epochs[0]!.train_loss);
    } finally {
      cleanup(run);
      cleanup(base);
    }
  });
  it('rejects a bad epsilon', async () => {
    await assertOptionError('label-smoothing', { epsilon: 2 }, /epsilon/);
  });
});
