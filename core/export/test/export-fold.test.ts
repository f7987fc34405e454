// BN folding on the model zoo: a folded model computes what the original computes in inference.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect } from 'chai';
import { ModelRegistry, Rng } from '@tricks/core';
import { foldablePairs, foldBatchNorm } from '../src/fold.js';
import { testBackend } from './helpers.js';
import { registerModels } from '@tricks/models';

const registry = registerModels(new ModelRegistry());
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

/** Random BN statistics and gammas, so that folding is tested on non-trivial values. */
function randomizeBn(model: tfl.LayersModel, rng: Rng): void {
  tf.tidy(() => {
    for (const w of model.weights) {
      const n = w.originalName;
      const size = w.shape.reduce<number>((a, b) => a * (b ?? 1), 1);
      const vals = Float32Array.from({ length: size }, () => rng.uniform(0.5, 1.5));
      if (/moving_variance|gamma/.test(n)) (w.read() as tf.Variable).assign(tf.tensor(vals, w.shape as number[]));
      if (/moving_mean|beta/.test(n))
        (w.read() as tf.Variable).assign(
          tf.tensor(
            vals.map((v) => v - 1),
            w.shape as number[],
          ),
        );
    }
  });
}

describe('export/fold: BN folding', function () {
  this.timeout(60000);
  before(testBackend);

  it('BN folding: the folded model computes the inference-mode output with fewer layers', async () => {
    for (const name of ['resnet20', 'mobilenetv3-small']) {
      const m = registry.build(name, { inputShape: [32, 32, 3], numClasses: 4 });
      randomizeBn(m, new Rng(5));
      const pairs = foldablePairs(m);
      expect(pairs.length).to.be.greaterThan(5);
      const { model: f } = await foldBatchNorm(m);
      expect(f.layers.length).to.equal(m.layers.length - pairs.length);
      const x = tf.randomUniform([2, 32, 32, 3]);
      const d = maxDiff((m.predict(x) as tf.Tensor).dataSync(), (f.predict(x) as tf.Tensor).dataSync());
      expect(d, name).to.be.below(1e-3);
      m.dispose();
      f.dispose();
    }
  });
});
