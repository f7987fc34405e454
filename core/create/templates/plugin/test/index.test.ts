import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { assertHookOrder, assertNoLeak, assertOptionError, cleanup, runSteps, useTestBackend } from '@tricks/helper-plugin-test-runner';
import { PLUGIN_NAME, zLoss } from '../src/index.js';

// The built entry point: the shared runner loads the plugin by path, as the trainer would load the package.
const PLUGIN = fileURLToPath(new URL('../src/index.js', import.meta.url));

describe({{nameLiteral}}, function () {
  this.timeout(120000);
  before(() => useTestBackend());

  it('computes weight * mean(logsumexp(logits)^2)', () => {
    // Row 1: logsumexp(0, 0) = ln 2. Row 2: logsumexp(ln 3, 0) = ln 4.
    const value = tf.tidy(() => zLoss(tf.tensor2d([[0, 0], [Math.log(3), 0]]), 0.5).dataSync()[0]);
    expect(value).to.be.closeTo(0.5 * (Math.LN2 ** 2 + Math.log(4) ** 2) / 2, 1e-6);
  });

  it('adds its loss term every step and reports it at the end of the epoch, leaking no tensor', async () => {
    const run = await runSteps({ plugins: [[PLUGIN, { weight: 0.01 }]], steps: 4 });
    try {
      assertHookOrder(run, PLUGIN_NAME, ['loss', 'epoch']);
      expect(run.calls.filter((c) => c === 'loss:' + PLUGIN_NAME)).to.have.length(4);
      const term = run.trainer.ctx.lastTerms[PLUGIN_NAME];
      expect(term).to.be.greaterThan(0);
      expect(run.result.epochs[0][PLUGIN_NAME]).to.equal(term);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });

  it('validates its options', async () => {
    await assertOptionError(PLUGIN, { weight: -1 }, /weight/);
    await assertOptionError(PLUGIN, { wieght: 0.1 }, /did you mean "weight"/);
  });
});
