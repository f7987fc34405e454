// The loss hook's contract with class-balance and label-smoothing: taps set targets and weights, the
// injected Loss (TOKENS.Loss) computes the base term once, after them.
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { ContainerModule } from 'inversify';
import { crossEntropy, TOKENS, type LossFunction } from '@tricks/core';
import { cleanup, runSteps, useTestBackend } from '@tricks/helper-plugin-test-runner';
import { classCounts, classWeights } from '../src/index.js';

describe('class-balance and label-smoothing with a rebound TOKENS.Loss', function () {
  this.timeout(60000);
  before(() => useTestBackend());
  it('the injected Loss gets the smoothed targets and class-balance weights, once per step, and its value is what the trainer minimizes', async () => {
    const eps = 0.2;
    const seen: { targets: number[][]; weights: number[] | undefined; value: number }[] = [];
    // twice the cross-entropy, so the test sees that this loss, not the default, is minimized
    const recording: LossFunction = (logits, targets, sampleWeights) => {
      const value = tf.mul(crossEntropy(logits, targets, sampleWeights), 2) as tf.Scalar;
      seen.push({
        targets: targets.arraySync(),
        weights: sampleWeights ? Array.from(sampleWeights.dataSync()) : undefined,
        value: value.dataSync()[0]!,
      });
      return value;
    };
    const modules = [new ContainerModule(({ rebind }) => void rebind(TOKENS.Loss).toConstantValue(recording))];
    const run = await runSteps({
      plugins: [
        ['class-balance', { strategy: 'loss' }],
        ['label-smoothing', { epsilon: eps }],
      ],
      steps: 3,
      config: { modules },
    });
    try {
      expect(seen).to.have.length(3);
      const k = run.trainer.ctx.numClasses;
      const w = classWeights(classCounts(run.trainer.ctx.train.labels, k));
      for (const s of seen) {
        const labels = s.targets.map((r) => r.indexOf(Math.max(...r)));
        // smoothed one-hot rows: (1 - eps) + eps/K on the label, eps/K elsewhere
        s.targets.forEach((r, i) => r.forEach((v, c) => expect(v).to.be.closeTo(c === labels[i] ? 1 - eps + eps / k : eps / k, 1e-6)));
        // class-balance's weights, from the unsmoothed targets: w[label]
        expect(s.weights).to.have.length(labels.length);
        s.weights!.forEach((v, i) => expect(v).to.be.closeTo(w[labels[i]!]!, 1e-5));
      }
      // the last step's only term is the rebound loss's value
      expect(Object.keys(run.trainer.ctx.lastTerms)).to.deep.equal(['ce']);
      expect(run.trainer.ctx.lastTerms.ce).to.be.closeTo(seen.at(-1)!.value, 1e-6);
    } finally {
      cleanup(run);
    }
  });
});
