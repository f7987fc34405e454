import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { randomResizedCropBox } from '@tricks/helper-augment';
import { Rng, validate } from '@tricks/core';
import { assertNoLeak, assertOptionError, cleanup, runSteps, tapsOf } from '@tricks/helper-plugin-test-runner';
import plugin, { augmentGeometryAndColour, augmentNormalizeAndErase, resolvePipeline, type AugmentOptions } from '../src/index.js';

function options(o: Partial<AugmentOptions> = {}): AugmentOptions {
  const v: Record<string, unknown> = { ...o };
  validate(plugin.schema!, v, 'plugin augment', 'plugins.augment');
  return v as unknown as AugmentOptions;
}

/** n images of h x w x 3 whose pixel (r, c) is distinct per image, never 0. */
function images(n: number, h: number, w: number): tf.Tensor4D {
  return tf.tidy(() => tf.div(tf.add(tf.reshape(tf.range(0, n * h * w * 3), [n, h, w, 3]), 1), n * h * w * 3 + 1) as tf.Tensor4D);
}

describe('augment', () => {
  before(async () => {
    await tf.setBackend('wasm');
  });

  it('per-dataset defaults: 32x32 gets pad-crop 4 + flip, 224x224 gets RandomResizedCrop + flip; ImageNet normalize', () => {
    const small = resolvePipeline(options(), 32, 32, 3);
    expect(small.crop).to.deep.equal({ kind: 'pad', padding: 4 });
    expect(small.flip).to.equal(0.5);
    expect(small.normalize!.mean).to.deep.equal([0.485, 0.456, 0.406]);
    const big = resolvePipeline(options(), 224, 224, 3);
    expect(big.crop).to.deep.include({ kind: 'rrc', scale: [0.08, 1] });
    expect(resolvePipeline(options({ preset: 'none' }), 224, 224, 3).crop).to.equal(null);
    expect(resolvePipeline(options({ padCrop: 2 }), 224, 224, 1).crop).to.deep.equal({ kind: 'pad', padding: 2 });
  });

  it('pad-crop + flip: every output is the input shifted by at most 4 pixels (zeros outside), seeded and reproducible', () => {
    tf.tidy(() => {
      const x = images(6, 8, 8);
      const p = resolvePipeline(options(), 8, 8, 3);
      const a = augmentGeometryAndColour(x, new Rng(1), p);
      const b = augmentGeometryAndColour(x, new Rng(1), p);
      expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0], 'same seed, same batch').to.equal(0);
      const xs = x.arraySync() as number[][][][];
      const ys = a.arraySync() as number[][][][];
      const differentShifts = new Set<string>();
      for (let i = 0; i < 6; i++) {
        // find the shift (and flip) that explains the output
        let found = '';
        for (const flip of [false, true])
          for (let dy = -4; dy <= 4 && !found; dy++)
            for (let dx = -4; dx <= 4 && !found; dx++) {
              let ok = true;
              for (let r = 0; r < 8 && ok; r++)
                for (let c = 0; c < 8 && ok; c++) {
                  const cc = flip ? 7 - c : c;
                  const sr = r + dy,
                    sc = cc + dx;
                  const want = sr >= 0 && sr < 8 && sc >= 0 && sc < 8 ? xs[i][sr][sc][0] : 0;
                  if (Math.abs(ys[i][r][c][0] - want) > 1e-7) ok = false;
                }
              if (ok) found = `${flip},${dy},${dx}`;
            }
        expect(found, `image ${i} is a shifted (flipped) copy`).to.not.equal('');
        differentShifts.add(found);
      }
      expect(differentShifts.size, 'images get their own offsets').to.be.greaterThan(1);
    });
  });

  it('RandomResizedCrop boxes follow torchvision: area fraction in [0.08, 1], aspect in [3/4, 4/3], centre-crop fallback', () => {
    const rng = new Rng(2);
    let sumFrac = 0;
    for (let t = 0; t < 2000; t++) {
      const b = randomResizedCropBox(rng, 64, 64);
      const frac = (b.height * b.width) / 4096;
      expect(frac).to.be.within(0.07, 1);
      expect(b.width / b.height).to.be.within(0.7, 1.45);
      sumFrac += frac;
    }
    // accepted draws of U(0.08, 1) average ~0.54 (large ones are rejected more often when the aspect does not fit)
    expect(sumFrac / 2000).to.be.within(0.45, 0.56);
    // a 10x100 strip cannot fit any aspect in [3/4, 4/3] at large scale: the fallback centre crop is 10 x round(10*4/3)
    const fb = randomResizedCropBox(new Rng(3), 10, 100, [0.9, 1]);
    expect(fb).to.deep.equal({ top: 0, left: 43, height: 10, width: 13 });
  });

  it('colour jitter changes colours within its ranges, and normalize + erasing act after it', () => {
    tf.tidy(() => {
      const x = images(4, 6, 6);
      const p = resolvePipeline(
        options({ preset: 'none', colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 }, erasing: { prob: 1 } }),
        6,
        6,
        3,
      );
      const y = augmentGeometryAndColour(x, new Rng(4), p);
      const d = tf.max(tf.abs(tf.sub(y, x))).dataSync()[0];
      expect(d).to.be.greaterThan(0.01);
      expect(tf.min(y).dataSync()[0]).to.be.at.least(0);
      expect(tf.max(y).dataSync()[0]).to.be.at.most(1);
      const z = augmentNormalizeAndErase(y, new Rng(5), p);
      const n = augmentNormalizeAndErase(y, null, p);
      expect(tf.max(tf.abs(tf.sub(n, tf.div(tf.sub(y, [0.485, 0.456, 0.406]), [0.229, 0.224, 0.225])))).dataSync()[0]).to.be.below(1e-5);
      const zeros = tf.sum(tf.cast(tf.equal(z, 0), 'float32')).dataSync()[0];
      expect(zeros, 'erased pixels are 0 after normalize').to.be.greaterThan(0);
    });
  });

  it('trains end to end (digits), normalizes eval batches, does not leak', async function () {
    this.timeout(60000);
    const run = await runSteps({ plugins: [['augment', { rotate: 10, erasing: { prob: 0.5 } }]], steps: 4 });
    try {
      expect(tapsOf(run.calls, 'batch').filter((t) => t === 'augment').length).to.equal(8);
      expect(run.calls).to.include('evalBatch:augment');
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
    await assertOptionError('augment', { colorJitter: { hue: 0.9 } }, /colorJitter/);
    await assertOptionError('augment', { flipp: 0.5 }, /flip/);
  });
});
