import { expect } from 'chai';
import { assertNoLeak, cleanup, runSteps } from '@tricks/helper-plugin-test-runner';

describe('no-bias-decay in a real training run (digits, small-cnn)', function () {
  this.timeout(60000);
  it('exempts the BN gamma/beta and dense biases of small-cnn, keeps the kernels decayed', async () => {
    const run = await runSteps({
      plugins: ['no-bias-decay'],
      steps: 3,
      config: { optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 5e-4 } },
    });
    try {
      assertNoLeak(run);
      // small-cnn: conv1, bn1 (gamma, beta), conv2, bn2 (gamma, beta), fc1 (kernel, bias), logits (kernel, bias)
      expect(run.logger.lines.join('\n')).to.match(/no-bias-decay: 6 of 10 trainable variables/);
    } finally {
      cleanup(run);
    }
  });
});
