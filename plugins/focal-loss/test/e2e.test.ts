import { expect } from 'chai';
import { assertNoLeak, assertOptionError, cleanup, runSteps } from '@tricks/helper-plugin-test-runner';

describe('focal-loss in a real training run (digits, small-cnn)', function () {
  this.timeout(60000);
  it('replaces ce by focal and leaks nothing', async () => {
    const run = await runSteps({ plugins: ['focal-loss'], steps: 4 });
    try {
      expect(Object.keys(run.trainer.ctx.lastTerms)).to.deep.equal(['focal']);
      expect(run.trainer.ctx.lastTerms.focal).to.be.greaterThan(0);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });
  it('rejects a wrong alpha length in setup, naming the option', async () => {
    let err: Error | undefined;
    await runSteps({ plugins: [['focal-loss', { alpha: [1, 2] }]], steps: 3 }).catch((e) => (err = e));
    expect(err?.message).to.match(/plugins.focal-loss.alpha.*10 classes/);
    await assertOptionError('focal-loss', { gamma: -1 }, /gamma/);
  });
});
