import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { type MixInfo } from '@tricks/helper-augment';
import { cutmixBox } from '../src/box.js';
import { Rng, type Batch } from '@tricks/core';
import { assertNoLeak, assertOptionError, cleanup, runSteps, tapsOf } from '@tricks/helper-plugin-test-runner';
import { cutmixStep, type CutmixOptions } from '../src/index.js';

const opts = (o: Partial<CutmixOptions> = {}): CutmixOptions => ({
  alpha: 1,
  prob: 1,
  switchProb: 0,
  mixupAlpha: 0.4,
  offEpoch: null,
  ...o,
});

function batch(n: number, h = 10, w = 12, k = 3): Batch {
  const labels = Int32Array.from({ length: n }, (_, i) => i % k);
  const x = tf.mul(tf.ones([n, h, w, 1]), tf.reshape(tf.range(1, n + 1), [n, 1, 1, 1])) as tf.Tensor4D;
  const y = tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), k), 'float32') as tf.Tensor2D;
  return { x, y, meta: { indices: Int32Array.from({ length: n }, (_, i) => i), labels, epoch: 0, step: 0 } };
}

describe('cutmix', () => {
  before(async () => {
    await tf.setBackend('wasm');
  });

  it('box side is sqrt(1 - lambda) of each side (truncated), clipped, and lambda is the kept area', function () {
    this.timeout(30000);
    const rng = new Rng(5);
    for (let t = 0; t < 300; t++) {
      const drawn = rng.next();
      const { box, lambda } = cutmixBox(rng, 10, 12, drawn);
      const cw = Math.trunc(12 * Math.sqrt(1 - drawn)),
        ch = Math.trunc(10 * Math.sqrt(1 - drawn));
      expect(box.width).to.be.at.most(2 * Math.floor(cw / 2));
      expect(box.height).to.be.at.most(2 * Math.floor(ch / 2));
      expect(box.left).to.be.at.least(0);
      expect(box.left + box.width).to.be.at.most(12);
      expect(lambda).to.be.closeTo(1 - (box.width * box.height) / 120, 1e-12);
    }
  });

  it('pastes the partner box into each image and mixes targets by the corrected lambda (odd batch)', () => {
    tf.tidy(() => {
      const b = batch(5);
      const out = cutmixStep(b, { rng: new Rng(9), epoch: 0 }, opts());
      const mix = out.meta.mix as MixInfo;
      expect(mix.kind).to.equal('cutmix');
      const box = mix.box!;
      const x = out.x.arraySync() as number[][][][];
      const y = out.y.arraySync() as number[][];
      for (let i = 0; i < 5; i++) {
        const j = mix.perm[i];
        let inside = 0;
        for (let r = 0; r < 10; r++)
          for (let c = 0; c < 12; c++) {
            const inBox = r >= box.top && r < box.top + box.height && c >= box.left && c < box.left + box.width;
            expect(x[i][r][c][0]).to.equal(inBox ? j + 1 : i + 1);
            if (inBox) inside++;
          }
        expect(1 - inside / 120).to.be.closeTo(mix.lambda, 1e-9);
        const want = [0, 0, 0];
        want[i % 3] += mix.lambda;
        want[j % 3] += 1 - mix.lambda;
        y[i].forEach((v, c) => expect(v).to.be.closeTo(want[c], 1e-6));
      }
    });
  });

  it('switchProb alternates with mixup, prob sets how often a batch is mixed, offEpoch stops it', function () {
    this.timeout(30000);
    tf.tidy(() => {
      const b = batch(4);
      const rng = new Rng(7);
      const kinds = { cutmix: 0, mixup: 0, none: 0 };
      for (let i = 0; i < 400; i++) {
        const out = cutmixStep(b, { rng, epoch: 0 }, opts({ prob: 0.8, switchProb: 0.5 }));
        kinds[out === b ? 'none' : (out.meta.mix as MixInfo).kind]++;
      }
      expect(kinds.none / 400).to.be.closeTo(0.2, 0.06);
      expect(kinds.mixup / 400).to.be.closeTo(0.4, 0.07);
      expect(kinds.cutmix / 400).to.be.closeTo(0.4, 0.07);
      expect(cutmixStep(b, { rng, epoch: 3 }, opts({ offEpoch: 3 }))).to.equal(b);
    });
  });

  it('runs before mixup, so a batch is mixed once; trains without leaks; rejects bad options', async function () {
    this.timeout(60000);
    const run = await runSteps({ plugins: ['mixup', ['cutmix', { prob: 1 }]], steps: 4 });
    try {
      const taps = tapsOf(run.calls, 'batch').filter((t) => t === 'cutmix' || t === 'mixup');
      expect(taps.slice(0, 2)).to.deep.equal(['cutmix', 'mixup']);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
    await assertOptionError('cutmix', { switchProb: 2 }, /switchProb/);
  });
});
