import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { assertNoLeak, cleanup, runSteps, tapsOf, useTestBackend } from '@tricks/helper-plugin-test-runner';

const PRESET = fileURLToPath(new URL('../src/index.js', import.meta.url));

describe({{presetTitleLiteral}}, function () {
  this.timeout(120000);
  before(() => useTestBackend());

  it('resolves its plugins and settings and trains a few steps', async () => {
    // The shared runner's tiny config (small model, 256 digits) sits on top of the preset, as a user's would.
    const run = await runSteps({ config: { preset: PRESET }, steps: 4 });
    try {
      expect(run.trainer.config.plugins.map((p) => p.name)).to.deep.equal(['label-smoothing']);
      expect(tapsOf(run.calls, 'loss')).to.include('label-smoothing');
      expect(run.trainer.config.optimizer.lr).to.equal(0.1);
      expect(run.trainer.config.schedule.name).to.equal('cosine');
      expect(Number.isFinite(run.result.epochs[0].train_loss)).to.equal(true);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });
});
