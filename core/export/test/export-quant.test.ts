// Fake quantization and qparams against PyTorch 1.13 (fixtures/quant/quant.json, made by
// fixtures/quant/make_fixtures.py): forward values, the straight-through gradient, per-channel scales.
// QAT's weight fake quantization and observer are checked on the same fixture in plugins/qat/test/qat-quant.test.ts.
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { activationRange, fakeQuantize, quantizeInts, symmetricQParams, weightQParams, weightRange } from '@tricks/helper-quant';
import { testBackend } from './helpers.js';

const ref = JSON.parse(readFileSync(new URL('../../test/fixtures/quant/quant.json', import.meta.url), 'utf8'));
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('export/quant: fake quantization as PyTorch', () => {
  before(testBackend);

  it('per-tensor affine uint8: values (ties round half to even) and the STE gradient inside the range only', () => {
    const r = ref.per_tensor;
    const x = tf.tensor1d(r.x);
    const { value, grads } = tf.valueAndGrads((t: tf.Tensor) =>
      tf.sum(tf.mul(fakeQuantize(t, tf.scalar(r.scale), tf.scalar(r.zero_point), { qmin: r.qmin, qmax: r.qmax }), tf.tensor1d(r.dy))),
    )([x]);
    const y = fakeQuantize(x, tf.scalar(r.scale), tf.scalar(r.zero_point), { qmin: r.qmin, qmax: r.qmax });
    expect(maxDiff(y.dataSync(), r.y)).to.be.below(1e-6);
    expect(maxDiff(grads[0].dataSync(), r.dx)).to.equal(0);
    // the reference has clipped entries, so the mask is exercised
    expect((r.dx as number[]).filter((v) => v === 0).length).to.be.greaterThan(3);
    tf.dispose([x, y, value, ...grads]);
  });

  it('4-bit per-tensor', () => {
    const r = ref.per_tensor_4bit;
    const y = fakeQuantize(tf.tensor1d(r.x), tf.scalar(r.scale), tf.scalar(r.zero_point), activationRange(4));
    expect(maxDiff(y.dataSync(), r.y)).to.be.below(1e-6);
  });

  // fakeQuantizeWeight's values and gradient on this reference: plugins/qat/test/qat-quant.test.ts
  it('per-channel symmetric int8 weights: PerChannelMinMaxObserver scales, integers in range', () => {
    const r = ref.per_channel;
    const w = tf.tensor4d(r.w, r.shape);
    const { scale, zeroPoint } = weightQParams(w, 'Conv2D', true, weightRange(8));
    expect(scale.shape).to.deep.equal([1, 1, 1, 6]);
    expect(maxDiff(scale.dataSync(), r.scale)).to.be.below(1e-12);
    expect(Array.from(zeroPoint.dataSync())).to.deep.equal(r.zero_point);
    const ints = quantizeInts(w, scale, zeroPoint, weightRange(8)).dataSync();
    expect(Math.min(...ints)).to.be.at.least(-128);
    expect(Math.max(...ints)).to.be.at.most(127);
  });

  it('per-tensor symmetric qparams', () => {
    const w = tf.tensor1d(ref.per_channel.w);
    const { scale } = symmetricQParams(tf.min(w), tf.max(w), weightRange(8));
    expect(scale.dataSync()[0]).to.be.closeTo(ref.per_tensor_symmetric.scale, 1e-9);
    const pt = weightQParams(tf.tensor4d(ref.per_channel.w, ref.per_channel.shape), 'Conv2D', false, weightRange(8));
    expect(pt.scale.size).to.equal(1);
    expect(pt.scale.dataSync()[0]).to.be.closeTo(ref.per_tensor_symmetric.scale, 1e-9);
  });
});
