import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { Rng, type Batch } from '@tricks/core';
import { type MixInfo } from '@tricks/helper-augment';
import { assertNoLeak, assertOptionError, cleanup, runSteps } from '@tricks/helper-plugin-test-runner';
import { smoothTargets } from '@tricks/plugin-label-smoothing';
import { mixupStep, type MixupOptions } from '../src/index.js';

const opts = (o: Partial<MixupOptions> = {}): MixupOptions => ({ alpha: 0.4, prob: 1, offEpoch: null, ...o });

function batch(n: number, k = 4): Batch {
  const labels = Int32Array.from({ length: n }, (_, i) => i % k);
  // image i is the constant i + 1, so mixed pixels show lambda and the partner
  const x = tf.mul(tf.ones([n, 3, 3, 1]), tf.reshape(tf.range(1, n + 1), [n, 1, 1, 1])) as tf.Tensor4D;
  const y = tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), k), 'float32') as tf.Tensor2D;
  return { x, y, meta: { indices: Int32Array.from({ length: n }, (_, i) => i), labels, epoch: 0, step: 0 } };
}

describe('mixup', () => {
  before(async () => {
    await tf.setBackend('wasm');
  });

  it('mixes images and one-hot targets with one lambda and a permutation, for an odd batch size', () => {
    tf.tidy(() => {
      const b = batch(7);
      const out = mixupStep(b, { rng: new Rng(3), epoch: 0 }, opts());
      const mix = out.meta.mix as MixInfo;
      expect(mix.kind).to.equal('mixup');
      expect([...mix.perm].sort()).to.deep.equal([0, 1, 2, 3, 4, 5, 6]);
      const lam = mix.lambda;
      expect(lam).to.be.within(0, 1);
      const x = out.x.arraySync() as number[][][][];
      const y = out.y.arraySync() as number[][];
      for (let i = 0; i < 7; i++) {
        const j = mix.perm[i];
        expect(x[i][1][2][0]).to.be.closeTo(lam * (i + 1) + (1 - lam) * (j + 1), 1e-5);
        const want = [0, 0, 0, 0];
        want[i % 4] += lam;
        want[j % 4] += 1 - lam;
        y[i].forEach((v, c) => expect(v).to.be.closeTo(want[c], 1e-6));
      }
      expect(Array.from(out.meta.labels), 'labels stay the original ones').to.deep.equal(Array.from(b.meta.labels));
    });
  });

  it('draws lambda from Beta(alpha, alpha): mean 1/2, variance 1/(4(2 alpha + 1))', function () {
    this.timeout(30000);
    const rng = new Rng(11);
    const lams: number[] = [];
    tf.tidy(() => {
      const b = batch(2);
      for (let i = 0; i < 1500; i++) lams.push((mixupStep(b, { rng, epoch: 0 }, opts({ alpha: 0.4 })).meta.mix as MixInfo).lambda);
    });
    const mean = lams.reduce((a, v) => a + v, 0) / lams.length;
    const variance = lams.reduce((a, v) => a + (v - mean) ** 2, 0) / lams.length;
    expect(mean).to.be.closeTo(0.5, 0.03);
    expect(variance).to.be.closeTo(1 / (4 * 1.8), 0.012);
  });

  it('stops at offEpoch, leaves batches mixed by an earlier tap, and honours prob', function () {
    this.timeout(30000);
    tf.tidy(() => {
      const b = batch(4);
      expect(mixupStep(b, { rng: new Rng(1), epoch: 5 }, opts({ offEpoch: 5 }))).to.equal(b);
      expect(mixupStep(b, { rng: new Rng(1), epoch: 4 }, opts({ offEpoch: 5 }))).to.not.equal(b);
      const cut = { ...b, meta: { ...b.meta, mix: { kind: 'cutmix' } } };
      expect(mixupStep(cut, { rng: new Rng(1), epoch: 0 }, opts())).to.equal(cut);
      const rng = new Rng(2);
      let mixed = 0;
      for (let i = 0; i < 400; i++) if (mixupStep(b, { rng, epoch: 0 }, opts({ prob: 0.25 })) !== b) mixed++;
      expect(mixed / 400).to.be.closeTo(0.25, 0.07);
    });
  });

  it('soft targets compose with label smoothing: smooth(mix(y)) = mix(smooth(y)), rows sum to 1', () => {
    tf.tidy(() => {
      const b = batch(5, 3);
      const out = mixupStep(b, { rng: new Rng(4), epoch: 0 }, opts());
      const { lambda, perm } = out.meta.mix as MixInfo;
      const s = smoothTargets(out.y, 0.1);
      const sy = smoothTargets(b.y, 0.1);
      const want = tf.add(tf.mul(sy, lambda), tf.mul(tf.gather(sy, tf.tensor1d(perm, 'int32')), 1 - lambda));
      expect(tf.max(tf.abs(tf.sub(s, want))).dataSync()[0]).to.be.below(1e-6);
      (tf.sum(s, 1).arraySync() as number[]).forEach((v) => expect(v).to.be.closeTo(1, 1e-6));
    });
  });

  it('trains end to end without leaking tensors and rejects bad options', async function () {
    this.timeout(60000);
    const run = await runSteps({ plugins: [['mixup', { alpha: 0.2 }]], steps: 4 });
    try {
      expect(run.calls).to.include('batch:mixup');
      expect(Number.isFinite(run.result.epochs[0].train_loss)).to.equal(true);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
    await assertOptionError('mixup', { alpha: 0 }, /alpha/);
    await assertOptionError('mixup', { alhpa: 1 }, /alpha/);
  });
});
