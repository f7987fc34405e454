import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  affineBatch,
  affineMatrix,
  erase,
  flipSome,
  normalize,
  padCrop,
  padCropFast,
  resizedCrop,
  resizedCropFast,
  rotateMatrix,
} from '../src/index.js';

/** Reference values: core/helper-augment/test/fixtures/augment/make_fixtures.py (torchvision 0.14 tensor functional API). */
const here = dirname(fileURLToPath(import.meta.url));
const fixture = JSON.parse(readFileSync(join(here, '../../test/fixtures/augment/ops.json'), 'utf8'));
type Case = { name: string; op: string; image: number; params: Record<string, any>; output: number[][][] };
const cases: Case[] = fixture.cases;

function input(i: number): tf.Tensor4D {
  const img: number[][][] = fixture.images[i];
  return tf.div(tf.tensor4d(img.flat(2), [1, img.length, img[0].length, 3]), 255) as tf.Tensor4D;
}

/** Max abs difference, and the fraction of values that differ by more than 1/255. */
function compare(actual: tf.Tensor, expected: number[][][]): { maxDiff: number; badFraction: number } {
  const a = actual.dataSync();
  const e = expected.flat(2);
  expect(a.length).to.equal(e.length);
  let maxDiff = 0,
    bad = 0;
  for (let i = 0; i < e.length; i++) {
    const d = Math.abs(a[i] - e[i]);
    maxDiff = Math.max(maxDiff, d);
    if (d > 1 / 255) bad++;
  }
  return { maxDiff, badFraction: bad / e.length };
}

/** Reference pad-crop computed by hand (zero pad, then crop), for an image the fixture does not cover. */
function padCropOf(image: number, top: number, left: number): number[][][] {
  const img: number[][][] = fixture.images[image];
  const h = img.length,
    w = img[0].length;
  return Array.from({ length: h }, (_, r) =>
    Array.from({ length: w }, (_, c) => {
      const sr = r + top - 4,
        sc = c + left - 4;
      return sr >= 0 && sr < h && sc >= 0 && sc < w ? img[sr][sc].map((v) => v / 255) : [0, 0, 0];
    }),
  );
}

function run(c: Case): tf.Tensor4D {
  const x = input(c.image);
  const p = c.params;
  const [, h, w] = x.shape;
  switch (c.op) {
    case 'resized_crop':
      return resizedCrop(x, [{ top: p.top, left: p.left, height: p.height, width: p.width }], p.size, [p.flip]);
    case 'pad_crop':
      return padCrop(x, p.padding, [{ top: p.top, left: p.left }]);
    case 'hflip':
      return flipSome(x, [true]);
    case 'rotate':
      return affineBatch(x, [rotateMatrix(p.angle)], p.interpolation);
    case 'affine':
      return affineBatch(
        x,
        [affineMatrix({ angle: p.angle, translate: p.translate, scale: p.scale, shear: p.shear }, h, w)],
        p.interpolation,
      );
    case 'brightness':
      return adjustBrightness(x, p.factor);
    case 'contrast':
      return adjustContrast(x, p.factor);
    case 'saturation':
      return adjustSaturation(x, p.factor);
    case 'hue':
      return adjustHue(x, p.factor);
    case 'color_jitter': {
      let y = x;
      for (const fn of p.order as number[]) {
        y = [
          () => adjustBrightness(y, p.brightness),
          () => adjustContrast(y, p.contrast),
          () => adjustSaturation(y, p.saturation),
          () => adjustHue(y, p.hue),
        ][fn]();
      }
      return y;
    }
    case 'normalize':
      return normalize(x, p.mean, p.std);
    case 'erase':
      return erase(x, [{ top: p.top, left: p.left, height: p.height, width: p.width }], p.value);
    default:
      throw new Error(`no op ${c.op}`);
  }
}

/**
 * Documented tolerances. Every op agrees with torchvision to float32 rounding: max abs difference below
 * 1e-6 on the [0, 1] scale (measured: at most 4.9e-7, for hue). Nearest-neighbour geometry (rotate, affine,
 * shear, translate) could pick another source pixel at an exact rounding tie of the float32 grid; we allow
 * 0.5% of values to differ there (measured: none do).
 */
function tolerance(c: Case): { maxDiff: number; badFraction: number } {
  const nearestGeometry = (c.op === 'rotate' || c.op === 'affine') && c.params.interpolation === 'nearest';
  if (nearestGeometry) return { maxDiff: 1, badFraction: 0.005 };
  return { maxDiff: 1e-6, badFraction: 0 };
}

describe('batched augmentation ops match torchvision 0.14 (fixtures)', () => {
  before(async () => {
    await tf.setBackend('wasm');
  });

  it(`fixtures were made by torchvision ${fixture.torchvision}`, () => {
    expect(cases.length).to.be.greaterThan(40);
  });

  // the AutoAugment ops' cases (op 'autoaugment_op') are checked with the ops, in plugins/autoaugment/test/ops.test.ts
  for (const c of cases.filter((k) => k.op !== 'autoaugment_op')) {
    it(c.name, () => {
      const before = tf.memory().numTensors;
      const got = tf.tidy(() => run(c));
      const r = compare(got, c.output);
      got.dispose();
      expect(tf.memory().numTensors).to.be.at.most(before + 0);
      const tol = tolerance(c);
      if (tol.badFraction > 0) expect(r.badFraction, `${c.name}: fraction of values off by >1/255`).to.be.at.most(tol.badFraction);
      else expect(r.maxDiff, `${c.name}: max abs difference`).to.be.below(tol.maxDiff);
    });
  }

  it('fast paths (one cropAndResize): pad-crop exact; resized crop equal inside, within 0.1 on the outer ring of an upscaled crop', () => {
    for (const c of cases.filter((k) => k.op === 'pad_crop' || k.op === 'resized_crop')) {
      const x = input(c.image);
      const p = c.params;
      const fast =
        c.op === 'pad_crop'
          ? padCropFast(x, p.padding, [{ top: p.top, left: p.left }])
          : resizedCropFast(x, [{ top: p.top, left: p.left, height: p.height, width: p.width }], p.size, [p.flip]);
      const r = compare(fast, c.output);
      if (c.op === 'pad_crop') expect(r.maxDiff, c.name).to.be.below(1e-5);
      else {
        expect(r.maxDiff, c.name).to.be.below(0.1);
        // away from the outer ring of the output, the two agree to float rounding
        const [oh, ow] = p.size as [number, number];
        const inner = tf.slice(fast, [0, 1, 1, 0], [1, oh - 2, ow - 2, 3]);
        const want = (c.output as number[][][]).slice(1, oh - 1).map((row) => row.slice(1, ow - 1));
        expect(compare(inner, want).maxDiff, `${c.name} interior`).to.be.below(1e-5);
      }
    }
  });

  it('applies different parameters to each image of one batch', () => {
    const both = tf.concat([input(0), input(1)]) as tf.Tensor4D;
    // image 0 gets one box, image 1 another box and a flip: image 1 must match its fixture
    const c0 = cases.find((c) => c.name === 'resized_crop_0')!;
    const c1 = cases.find((c) => c.name === 'resized_crop_flip_1')!; // made on image 1
    const boxes = [c0, c1].map((c) => ({ top: c.params.top, left: c.params.left, height: c.params.height, width: c.params.width }));
    const out = resizedCrop(both, boxes, c1.params.size, [false, true]);
    const first = tf.slice(out, [1, 0, 0, 0], [1, -1, -1, -1]);
    expect(compare(first, c1.output).maxDiff).to.be.below(1e-6);
    const padded = padCrop(both, 4, [
      { top: 0, left: 0 },
      { top: 3, left: 6 },
    ]);
    expect(
      compare(tf.slice(padded, [0, 0, 0, 0], [1, -1, -1, -1]), cases.find((c) => c.name === 'pad_crop_0')!.output).maxDiff,
    ).to.be.below(1e-6);
    expect(compare(tf.slice(padded, [1, 0, 0, 0], [1, -1, -1, -1]), padCropOf(1, 3, 6)).maxDiff).to.be.below(1e-6);
    const rot = cases.find((c) => c.name === 'rotate_1')!; // image 1
    const r = affineBatch(both, [null, rotateMatrix(rot.params.angle)], 'nearest');
    expect(compare(tf.slice(r, [1, 0, 0, 0], [1, -1, -1, -1]), rot.output).badFraction).to.be.at.most(0.01);
    expect(
      compare(
        tf.slice(r, [0, 0, 0, 0], [1, -1, -1, -1]),
        (fixture.images[0] as number[][][]).map((row) => row.map((px) => px.map((v) => v / 255))),
      ).maxDiff,
    ).to.be.below(1e-6);
    tf.dispose([both, out, first, r, padded]);
  });
});
