import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { InMemoryDataset, lossTerms, Rng, type Batch, type LossState } from '@tricks/core';
import { assertNoLeak, cleanup, runSteps } from '@tricks/helper-plugin-test-runner';
import { ClassBalancedSampler, classCounts, classWeights, nearestNeighbours, Smote, weightLoss } from '../src/index.js';

function longTail(counts: number[]): InMemoryDataset {
  const labels = Int32Array.from(counts.flatMap((n, c) => new Array(n).fill(c)));
  const images = new Uint8Array(labels.length * 4);
  labels.forEach((l, i) => images.set([l * 20 + (i % 7), 5 * (i % 11), 100, 3 * l], i * 4));
  return new InMemoryDataset('lt', images, labels, [2, 2, 1], counts.length);
}

describe('class-balance', () => {
  before(async () => {
    await tf.setBackend('wasm');
  });

  it('class weights are 1/freq with mean 1 over samples (sklearn balanced)', () => {
    const counts = [100, 10, 1];
    const w = classWeights(counts);
    expect(w[1] / w[0]).to.be.closeTo(10, 1e-9);
    expect(w[2] / w[0]).to.be.closeTo(100, 1e-9);
    expect(counts.reduce((a, n, c) => a + n * w[c], 0) / 111).to.be.closeTo(1, 1e-12);
    const sk = counts.map((n) => 111 / (3 * n));
    w.forEach((v, c) => expect(v).to.be.closeTo(sk[c], 1e-9));
  });

  it('the weighted loss uses targets · w, so mixed targets get mixed weights, and multiplies earlier weights', () => {
    tf.tidy(() => {
      const logits = tf.tensor2d([
        [1, 0, -1],
        [0.5, 0.2, 0.1],
      ]);
      const targets = tf.tensor2d([
        [1, 0, 0],
        [0.25, 0, 0.75],
      ]);
      const w = tf.tensor1d([0.5, 1, 4]);
      const batch = {
        x: tf.zeros([2, 1, 1, 1]),
        y: targets,
        meta: { indices: new Int32Array(2), labels: Int32Array.from([0, 2]), epoch: 0, step: 0, sampleWeights: tf.tensor1d([1, 2]) },
      } as Batch;
      const state: LossState = { logits, batch, targets, sampleWeights: batch.meta.sampleWeights, terms: {} };
      const out = weightLoss(state, w);
      expect(Array.from(out.sampleWeights!.dataSync())).to.deep.equal([0.5, 2 * (0.25 * 0.5 + 0.75 * 4)]);
      const per = [-Math.log(Math.exp(1) / (Math.exp(1) + 1 + Math.exp(-1))), 0];
      const ls = tf.logSoftmax(logits).arraySync() as number[][];
      per[1] = -(0.25 * ls[1][0] + 0.75 * ls[1][2]);
      const sw = [0.5, 6.25];
      expect(lossTerms(out).ce.dataSync()[0]).to.be.closeTo((sw[0] * per[0] + sw[1] * per[1]) / (sw[0] + sw[1]), 1e-5);
    });
  });

  it('the re-sampling sampler draws every class about equally, seeded by (seed, epoch)', () => {
    const ds = longTail([500, 50, 5]);
    const s = new ClassBalancedSampler(1);
    const idx = s.epochIndices(ds, 0, 1);
    expect(idx.length).to.equal(555);
    const seen = classCounts(
      Int32Array.from(idx, (i) => ds.labels[i]),
      3,
    );
    seen.forEach((n) => expect(n / 555).to.be.closeTo(1 / 3, 0.06));
    expect(Array.from(s.epochIndices(ds, 0, 1))).to.deep.equal(Array.from(idx));
    expect(Array.from(s.epochIndices(ds, 1, 1))).to.not.deep.equal(Array.from(idx));
    const sqrt = classCounts(
      Int32Array.from(new ClassBalancedSampler(0.5).epochIndices(ds, 0, 1), (i) => ds.labels[i]),
      3,
    );
    expect(sqrt[0]).to.be.greaterThan(sqrt[1]);
  });

  it('nearest neighbours are the closest points of the class', () => {
    const pts = Float32Array.from([0, 0, 1, 0, 10, 10, 0, 1.5, 11, 10]);
    const nn = nearestNeighbours(pts, 5, 2, 2);
    expect(Array.from(nn.subarray(0, 2))).to.deep.equal([1, 3]);
    expect(nn[2 * 2]).to.equal(4);
  });

  it('SMOTE replaces rare-class rows by points on the segment to a same-class neighbour; the head class is left alone', async () => {
    const ds = longTail([40, 8, 4]);
    const smote = new Smote({ strategy: 'smote', power: 1, k: 2, space: 'pixel', maxPool: 100 });
    await smote.build(ds, new Rng(1));
    expect(smote.replaceProb).to.deep.equal([0, 0.8, 0.9]);
    const indices = Int32Array.from([0, 40, 41, 48, 49, 50]);
    const raw = await ds.getBatch(indices);
    tf.tidy(() => {
      const x = tf.div(tf.tensor4d(raw.images, [6, 2, 2, 1]), 255) as tf.Tensor4D;
      const batch: Batch = { x, y: tf.zeros([6, 3]) as tf.Tensor2D, meta: { indices, labels: raw.labels, epoch: 0, step: 0 } };
      const out = smote.apply(batch, new Rng(3));
      const u = out.meta.smote as Float32Array;
      expect(u[0]).to.equal(0);
      expect(Array.from(u).filter((v) => v === 1).length).to.be.greaterThan(0);
      const xs = out.x.arraySync() as number[][][][];
      for (let i = 0; i < 6; i++) {
        // the first pixel encodes the class (20 * label + small), and an interpolation keeps it in the class's range
        const v = xs[i][0][0][0] * 255;
        expect(v).to.be.within(raw.labels[i] * 20, raw.labels[i] * 20 + 6 + 1e-3);
      }
    });
  });

  for (const strategy of ['loss', 'resample', 'smote'] as const) {
    it(`trains end to end with strategy ${strategy} (the sampler is rebound for resample and smote), no leak`, async function () {
      this.timeout(60000);
      const run = await runSteps({ plugins: [['class-balance', { strategy }]], steps: 4 });
      try {
        if (strategy === 'loss') expect(run.calls).to.include('loss:class-balance');
        if (strategy === 'smote') expect(run.calls).to.include('batch:class-balance');
        expect(Number.isFinite(run.result.epochs[0].train_loss)).to.equal(true);
        assertNoLeak(run);
      } finally {
        cleanup(run);
      }
    });
  }
});
