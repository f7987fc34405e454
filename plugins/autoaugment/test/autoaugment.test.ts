import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { applyOps } from '../src/ops.js';
import { Rng } from '@tricks/core';
import { assertNoLeak, assertOptionError, cleanup, runSteps } from '@tricks/helper-plugin-test-runner';
import { augmentationSpace, autoAugmentBatch, autoAugmentOps, POLICIES, randAugmentOps } from '../src/index.js';

/** torchvision 0.14's policies and magnitude bins, dumped by core/helper-augment/test/fixtures/augment/make_fixtures.py. */
const fixture = JSON.parse(
  readFileSync(new URL('../../../../core/helper-augment/test/fixtures/augment/ops.json', import.meta.url), 'utf8'),
);

describe('autoaugment', () => {
  before(async () => {
    await tf.setBackend('wasm');
  });

  for (const p of ['cifar10', 'imagenet', 'svhn'] as const) {
    it(`the ${p} policy is torchvision's, 25 sub-policies`, () => {
      expect(POLICIES[p].length).to.equal(25);
      expect(POLICIES[p]).to.deep.equal(fixture.policies[p]);
    });
  }

  it('magnitude bins equal torchvision _augmentation_space (AutoAugment 10 bins, RandAugment 31) on a 20x24 image', () => {
    for (const [bins, rand] of [
      [10, false],
      [31, true],
    ] as const) {
      const ours = augmentationSpace(bins, fixture.height, fixture.width, rand);
      const theirs = fixture.spaces[String(bins)];
      expect([...ours.keys()]).to.deep.equal(Object.keys(theirs));
      for (const [name, v] of ours) {
        expect(v.signed, name).to.equal(theirs[name].signed);
        expect(v.magnitudes.length, name).to.equal(theirs[name].magnitudes.length);
        v.magnitudes.forEach((m, i) => expect(m, `${name}[${i}]`).to.be.closeTo(theirs[name].magnitudes[i], 1e-4));
      }
    }
  });

  it('draws sub-policies uniformly and applies each op with its probability', () => {
    const rng = new Rng(8);
    const n = 5000;
    const [first] = autoAugmentOps(rng, n, 32, 32, POLICIES.cifar10);
    // cifar10 sub-policy 0 is (Invert 0.1, Contrast 0.2); the first slot's ops, weighted by probability:
    const expected = new Map<string, number>();
    for (const [[name, p]] of POLICIES.cifar10) expected.set(name, (expected.get(name) ?? 0) + p / 25);
    const seen = new Map<string, number>();
    for (const op of first) if (op) seen.set(op.name, (seen.get(op.name) ?? 0) + 1 / n);
    for (const [name, f] of expected) expect(seen.get(name) ?? 0, name).to.be.closeTo(f, 0.025);
    const ra = randAugmentOps(new Rng(9), 3000, 32, 32, 2, 9, 31);
    expect(ra.length).to.equal(2);
    const rotations = ra[0].filter((o) => o?.name === 'Rotate');
    expect(rotations.length / 3000).to.be.closeTo(1 / 14, 0.015);
    expect(new Set(rotations.map((o) => Math.abs(o!.magnitude)))).to.deep.equal(new Set([9]));
  });

  it('the batch equals applying each image ops alone (per-image ops in one batch)', () => {
    tf.tidy(() => {
      const img = (i: number) =>
        tf.div(tf.tensor4d((fixture.images[i] as number[][][]).flat(2), [1, fixture.height, fixture.width, 3]), 255) as tf.Tensor4D;
      const x = tf.concat([img(0), img(1), img(0), img(1)]) as tf.Tensor4D;
      const opts = { policy: 'randaugment' as const, n: 2, m: 12, bins: 31, interpolation: 'nearest' as const, prob: 1 };
      const out = autoAugmentBatch(x, new Rng(21), opts);
      const slots = randAugmentOps(new Rng(21), 4, fixture.height, fixture.width, 2, 12, 31);
      for (let i = 0; i < 4; i++) {
        let one = tf.slice(x, [i, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D;
        for (const s of slots) one = applyOps(one, [s[i]]);
        const d = tf.max(tf.abs(tf.sub(one, tf.slice(out, [i, 0, 0, 0], [1, -1, -1, -1])))).dataSync()[0];
        expect(d, `image ${i}: ${slots.map((s) => s[i]?.name).join(', ')}`).to.be.below(1e-6);
      }
    });
  });

  it('trains end to end without leaks; rejects m >= bins', async function () {
    this.timeout(60000);
    const run = await runSteps({ plugins: [['autoaugment', { policy: 'svhn' }]], steps: 4 });
    try {
      expect(run.calls).to.include('batch:autoaugment');
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
    await assertOptionError('autoaugment', { policy: 'randaugment', m: 31 }, /m \(31\) must be below bins/);
  });
});
