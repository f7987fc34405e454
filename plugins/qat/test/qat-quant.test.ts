// QAT's weight fake quantization and moving-average observer against PyTorch 1.13: the fixture of the shared
// quantization arithmetic (core/export/test/fixtures/quant/quant.json, made by make_fixtures.py next to it).
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { activationRange, affineQParams, weightRange } from '@tricks/helper-quant';
import { useTestBackend } from '@tricks/helper-plugin-test-runner';
import { fakeQuantizeWeight, MinMaxObserver } from '../src/quant.js';

const ref = JSON.parse(readFileSync(new URL('../../../../core/export/test/fixtures/quant/quant.json', import.meta.url), 'utf8'));
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('qat/quant: weight fake quantization and observer as PyTorch', () => {
  before(() => useTestBackend());

  it('per-channel symmetric int8 weights: fake_quantize_per_channel_affine values and gradient', () => {
    const r = ref.per_channel;
    const w = tf.tensor4d(r.w, r.shape);
    const y = fakeQuantizeWeight(w, 'Conv2D', true, weightRange(8));
    expect(maxDiff(y.dataSync(), r.y)).to.be.below(1e-6);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(fakeQuantizeWeight(t, 'Conv2D', true, weightRange(8)), tf.tensor4d(r.dy, r.shape))))(
      w,
    );
    expect(maxDiff(g.dataSync(), r.dx)).to.be.below(1e-7);
  });

  it('moving-average min/max observer and its uint8 affine qparams', () => {
    const r = ref.observer;
    const o = new MinMaxObserver('t');
    const n0 = tf.memory().numTensors;
    for (const b of r.batches) tf.tidy(() => o.observe(tf.tensor1d(b)));
    expect(tf.memory().numTensors).to.equal(n0);
    expect(o.min.dataSync()[0]).to.be.closeTo(r.min, 1e-6);
    expect(o.max.dataSync()[0]).to.be.closeTo(r.max, 1e-6);
    const q = o.qparamsSync(activationRange(8));
    expect(q.scale).to.be.closeTo(r.scale, 1e-8);
    expect(q.zeroPoint).to.equal(r.zero_point);
    const p = ref.observer_positive;
    const { scale, zeroPoint } = affineQParams(tf.scalar(Math.min(...p.batch)), tf.scalar(Math.max(...p.batch)), activationRange(8));
    expect(scale.dataSync()[0]).to.be.closeTo(p.scale, 1e-9);
    expect(zeroPoint.dataSync()[0]).to.equal(p.zero_point);
    o.dispose();
  });
});
