import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect } from 'chai';
import { variableGradsFrugal } from '../src/frugal-gradients.js';

/** A small residual net: conv, batch norm, relu, a shared tensor used twice (fan-out), an add, pooling, dense. */
function net(): tfl.LayersModel {
  const input = tfl.input({ shape: [8, 8, 3] });
  const a = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false }).apply(input) as tfl.SymbolicTensor;
  const b = tfl.layers.batchNormalization().apply(a) as tfl.SymbolicTensor;
  const r = tfl.layers.reLU().apply(b) as tfl.SymbolicTensor;
  const c = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }).apply(r) as tfl.SymbolicTensor;
  const s = tfl.layers.add().apply([c, r, r]) as tfl.SymbolicTensor;
  const p = tfl.layers.globalAveragePooling2d({}).apply(s) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 5 }).apply(p) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

describe('variableGradsFrugal', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('gives the same value and bit-identical gradients as tf.variableGrads, frees what it used, and peaks lower', async () => {
    const model = net();
    const x = tf.randomNormal([6, 8, 8, 3], 0, 1, 'float32', 3);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 4, 0], 'int32'), 5);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const loss = () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
    const results: { value: number; grads: Record<string, Float32Array>; peak: number; left: number }[] = [];
    for (const f of [tf.variableGrads, variableGradsFrugal]) {
      const moving = model.getWeights().map((w) => w.clone());
      const before = tf.memory().numTensors;
      let out: { value: number; grads: Record<string, Float32Array> } | undefined;
      const prof = await tf.profile(() => {
        const { value, grads } = f(loss, vars);
        out = {
          value: value.dataSync()[0]!,
          grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, Float32Array.from(g!.dataSync())])),
        };
        tf.dispose([value, ...Object.values(grads)]);
      });
      results.push({ ...out!, peak: prof.peakBytes, left: tf.memory().numTensors - before });
      model.setWeights(moving); // the batch-norm step moved the statistics: start the second run where the first did
      tf.dispose(moving);
    }
    const [ref, got] = results as [(typeof results)[0], (typeof results)[0]];
    expect(got.value).to.equal(ref.value);
    expect(Object.keys(got.grads).sort()).to.deep.equal(Object.keys(ref.grads).sort());
    expect(Object.keys(got.grads)).to.have.length(vars.length);
    for (const k of Object.keys(ref.grads)) expect(Array.from(got.grads[k]!), k).to.deep.equal(Array.from(ref.grads[k]!));
    expect(got.left).to.equal(0);
    expect(ref.left).to.equal(0);
    expect(got.peak).to.be.below(ref.peak);
    tf.dispose([x, y]);
  });

  it('refuses a non-scalar result and a loss that reaches no variable, as tf.variableGrads does', () => {
    const v = tf.variable(tf.ones([3]));
    const w = tf.variable(tf.ones([3]));
    expect(() => variableGradsFrugal(() => tf.mul(v, 2) as unknown as tf.Scalar, [v])).to.throw(/scalar/);
    expect(() => variableGradsFrugal(() => tf.sum(w), [v])).to.throw(/connection/);
    tf.dispose([v, w]);
  });
});
