import { expect } from 'chai';
import { cleanup, runSteps } from '@tricks/helper-plugin-test-runner';

describe('lr-scaling in a real training run (digits, small-cnn)', function () {
  this.timeout(60000);
  it('batch 32 with lr 0.2 trains at 0.2 * 32/256 = 0.025', async () => {
    const run = await runSteps({ plugins: ['lr-scaling'], steps: 3, config: { optimizer: { name: 'sgd', lr: 0.2 } } });
    try {
      expect(run.trainer.ctx.optimizer.learningRate).to.be.closeTo(0.025, 1e-12);
    } finally {
      cleanup(run);
    }
  });
});
