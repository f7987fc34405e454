import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '@tricks/core';
import { assertNoLeak, cleanup, runSteps } from '@tricks/helper-plugin-test-runner';
import { ConfidenceTracker, dbscanOutliers } from '../src/index.js';

describe('noise-filter', () => {
  before(async () => {
    await tf.setBackend('wasm');
  });

  it('flags samples whose own-label probability stays below the threshold for the whole window', () => {
    const t = new ConfidenceTracker(4);
    // epoch 0: sample 0 low, 1 low, 2 high; sample 3 unseen
    t.record(Int32Array.from([0, 1, 2]), Float32Array.from([0.05, 0.02, 0.9]));
    t.endEpoch();
    // epoch 1: sample 0 low twice (mean 0.06), sample 1 recovers, sample 2 high
    t.record(Int32Array.from([0, 1, 2, 0]), Float32Array.from([0.04, 0.5, 0.8, 0.08]));
    t.endEpoch();
    const s = t.suspects(0.1, 2);
    expect([...s.keys()]).to.deep.equal([0]);
    expect(s.get(0)).to.be.closeTo((0.05 + 0.06) / 2, 1e-6);
    expect([...t.suspects(0.1, 1).keys()]).to.deep.equal([0]);
    expect(t.suspects(0.1, 3).size, 'not enough epochs yet').to.equal(0);
  });

  it('DBSCAN (density-clustering) marks a point far from its class cluster as noise', () => {
    const rng = new Rng(1);
    const n = 60,
      d = 8;
    const emb = new Float32Array(n * d);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) emb[i * d + j] = (j === 0 ? 1 : 0) + rng.normal(0, 0.05);
    for (let j = 0; j < d; j++) emb[17 * d + j] = j === 5 ? 1 : rng.normal(0, 0.05); // a mislabeled-looking point
    const { noise, eps } = dbscanOutliers(emb, n, d, 5, null);
    expect(eps).to.be.greaterThan(0);
    expect(noise).to.include(17);
    expect(noise.length).to.be.below(8);
  });

  it('after warm-up it drops low-confidence samples, writes noise-report.json/csv into the run dir, no leak', async function () {
    this.timeout(90000);
    const run = await runSteps({
      plugins: [['noise-filter', { warmup: 1, window: 1, threshold: 0.5, use: 'either', dbscan: { minPts: 4, maxPerClass: 40 } }]],
      steps: 4,
      config: { epochs: 2, limit: { train: 128, val: 64, steps: 4 } },
    });
    try {
      const file = join(run.out, 'noise-report.json');
      expect(existsSync(file)).to.equal(true);
      const report = JSON.parse(readFileSync(file, 'utf8'));
      expect(report.count).to.be.greaterThan(0);
      expect(report.samples[0]).to.have.keys(['index', 'label', 'score', 'reasons']);
      expect(readFileSync(join(run.out, 'noise-report.csv'), 'utf8').split('\n')[0]).to.equal('index,label,score,reasons');
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });
});
