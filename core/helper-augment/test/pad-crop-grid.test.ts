import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { padCrop, padCropFast } from '../src/index.js';

/**
 * Every offset and flip of RandomCrop(size, padding) + RandomHorizontalFlip against torchvision
 * (test/fixtures/augment/make_pad_crop_grid.py), on images whose borders are not zero, on both backends and in
 * one batch (one offset per image). padCropFast used to be a cropAndResize whose float box corners lost a border
 * row on cpu and shifted the crop of offset (2, 3) of a 28-px image on wasm: this grid fails on that code.
 */
const here = dirname(fileURLToPath(import.meta.url));
const grid = JSON.parse(readFileSync(join(here, '../../test/fixtures/augment/pad_crop_grid.json'), 'utf8'));
type Case = { image: number; padding: number; top: number; left: number; flip: boolean; output: number[] };
const cases: Case[] = grid.cases;

for (const backend of ['wasm', 'cpu']) {
  describe(`padCrop and padCropFast against torchvision, every offset and flip (${backend})`, () => {
    let previous: string;
    before(async () => {
      previous = tf.getBackend();
      await tf.setBackend(backend);
    });
    after(async () => {
      if (previous) await tf.setBackend(previous);
    });

    for (const [i, img] of (grid.images as { shape: [number, number, number]; data: number[] }[]).entries()) {
      for (const padding of [2, 3]) {
        const group = cases.filter((c) => c.image === i && c.padding === padding);
        it(`${img.shape.join('x')} image, padding ${padding}: ${group.length} crops in one batch, exact`, () => {
          const [h, w, ch] = img.shape;
          const before = tf.memory().numTensors;
          const x = tf.tidy(() => tf.div(tf.tile(tf.tensor4d(img.data, [1, h, w, ch]), [group.length, 1, 1, 1]), 255) as tf.Tensor4D);
          const offsets = group.map((c) => ({ top: c.top, left: c.left }));
          const flips = group.map((c) => c.flip);
          const want = group.flatMap((c) => c.output);
          for (const [name, op] of [
            ['padCropFast', padCropFast],
            ['padCrop', padCrop],
          ] as const) {
            const y = op(x, padding, offsets, flips);
            const got = y.dataSync();
            let worst = 0,
              at = -1;
            for (let k = 0; k < want.length; k++) {
              const d = Math.abs(got[k] * 255 - want[k]);
              if (d > worst) [worst, at] = [d, k];
            }
            const c = at >= 0 ? group[Math.floor(at / (h * w * ch))] : undefined;
            expect(worst, `${name}: worst at offset (${c?.top}, ${c?.left}) flip ${c?.flip}`).to.be.below(1e-3);
            y.dispose();
          }
          x.dispose();
          expect(tf.memory().numTensors).to.equal(before);
        });
      }
    }
  });
}
