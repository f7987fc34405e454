// The AutoAugment / RandAugment ops against torchvision 0.14's _apply_op: the 'autoaugment_op' cases of the shared
// augmentation fixture (core/helper-augment/test/fixtures/augment/ops.json, made by make_fixtures.py next to it).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { applyOps, type AAOpName } from '../src/ops.js';

const fixture = JSON.parse(
  readFileSync(new URL('../../../../core/helper-augment/test/fixtures/augment/ops.json', import.meta.url), 'utf8'),
);
type Case = { name: string; op: string; image: number; params: Record<string, any>; output: number[][][] };
const cases: Case[] = (fixture.cases as Case[]).filter((c) => c.op === 'autoaugment_op');

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

/**
 * Documented tolerances (as for the other ops, core/helper-augment/test/augment-ops.test.ts): float32 rounding,
 * max abs difference below 1e-6 on the [0, 1] scale; nearest-neighbour geometry (shear, translate, rotate) could
 * pick another source pixel at an exact rounding tie of the float32 grid, so 0.5% of values may differ there.
 */
function tolerance(c: Case): { maxDiff: number; badFraction: number } {
  if (['ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate'].includes(c.params.op)) return { maxDiff: 1, badFraction: 0.005 };
  return { maxDiff: 1e-6, badFraction: 0 };
}

describe('autoaugment ops match torchvision 0.14 _apply_op (fixtures)', () => {
  before(async () => {
    await tf.setBackend('wasm');
  });

  it('the fixture has the AutoAugment op cases', () => {
    expect(cases.length).to.be.greaterThan(0);
  });

  for (const c of cases) {
    it(c.name, () => {
      const before = tf.memory().numTensors;
      const got = tf.tidy(() => applyOps(input(c.image), [{ name: c.params.op as AAOpName, magnitude: c.params.magnitude }]));
      const r = compare(got, c.output);
      got.dispose();
      expect(tf.memory().numTensors).to.be.at.most(before + 0);
      const tol = tolerance(c);
      if (tol.badFraction > 0) expect(r.badFraction, `${c.name}: fraction of values off by >1/255`).to.be.at.most(tol.badFraction);
      else expect(r.maxDiff, `${c.name}: max abs difference`).to.be.below(tol.maxDiff);
    });
  }
});
