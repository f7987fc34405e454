import * as tf from '@tensorflow/tfjs-core';
import { definePlugin, STAGE_AUGMENT, TricksError, type Batch, type Rng } from '@tricks/core';
import { applyOps, type AAOp, type AAOpName } from './ops.js';

export { type AAOp, type AAOpName, AA_OPS, applyOps, geometricMatrix } from './ops.js';

export const PLUGIN_NAME = 'autoaugment';
/** After augment's crop/flip/colour (STAGE_AUGMENT), before its Normalize (STAGE_AUGMENT + 50). */
export const STAGE = STAGE_AUGMENT + 10;

/** [op, probability, magnitude bin (null: no magnitude)] */
export type SubPolicy = [[AAOpName, number, number | null], [AAOpName, number, number | null]];

/** The learned policies of Cubuk et al. 2019, as torchvision 0.14's AutoAugment lists them (25 sub-policies each). */
export const POLICIES: Record<'cifar10' | 'imagenet' | 'svhn', SubPolicy[]> = {
  cifar10: [
    [
      ['Invert', 0.1, null],
      ['Contrast', 0.2, 6],
    ],
    [
      ['Rotate', 0.7, 2],
      ['TranslateX', 0.3, 9],
    ],
    [
      ['Sharpness', 0.8, 1],
      ['Sharpness', 0.9, 3],
    ],
    [
      ['ShearY', 0.5, 8],
      ['TranslateY', 0.7, 9],
    ],
    [
      ['AutoContrast', 0.5, null],
      ['Equalize', 0.9, null],
    ],
    [
      ['ShearY', 0.2, 7],
      ['Posterize', 0.3, 7],
    ],
    [
      ['Color', 0.4, 3],
      ['Brightness', 0.6, 7],
    ],
    [
      ['Sharpness', 0.3, 9],
      ['Brightness', 0.7, 9],
    ],
    [
      ['Equalize', 0.6, null],
      ['Equalize', 0.5, null],
    ],
    [
      ['Contrast', 0.6, 7],
      ['Sharpness', 0.6, 5],
    ],
    [
      ['Color', 0.7, 7],
      ['TranslateX', 0.5, 8],
    ],
    [
      ['Equalize', 0.3, null],
      ['AutoContrast', 0.4, null],
    ],
    [
      ['TranslateY', 0.4, 3],
      ['Sharpness', 0.2, 6],
    ],
    [
      ['Brightness', 0.9, 6],
      ['Color', 0.2, 8],
    ],
    [
      ['Solarize', 0.5, 2],
      ['Invert', 0.0, null],
    ],
    [
      ['Equalize', 0.2, null],
      ['AutoContrast', 0.6, null],
    ],
    [
      ['Equalize', 0.2, null],
      ['Equalize', 0.6, null],
    ],
    [
      ['Color', 0.9, 9],
      ['Equalize', 0.6, null],
    ],
    [
      ['AutoContrast', 0.8, null],
      ['Solarize', 0.2, 8],
    ],
    [
      ['Brightness', 0.1, 3],
      ['Color', 0.7, 0],
    ],
    [
      ['Solarize', 0.4, 5],
      ['AutoContrast', 0.9, null],
    ],
    [
      ['TranslateY', 0.9, 9],
      ['TranslateY', 0.7, 9],
    ],
    [
      ['AutoContrast', 0.9, null],
      ['Solarize', 0.8, 3],
    ],
    [
      ['Equalize', 0.8, null],
      ['Invert', 0.1, null],
    ],
    [
      ['TranslateY', 0.7, 9],
      ['AutoContrast', 0.9, null],
    ],
  ],
  imagenet: [
    [
      ['Posterize', 0.4, 8],
      ['Rotate', 0.6, 9],
    ],
    [
      ['Solarize', 0.6, 5],
      ['AutoContrast', 0.6, null],
    ],
    [
      ['Equalize', 0.8, null],
      ['Equalize', 0.6, null],
    ],
    [
      ['Posterize', 0.6, 7],
      ['Posterize', 0.6, 6],
    ],
    [
      ['Equalize', 0.4, null],
      ['Solarize', 0.2, 4],
    ],
    [
      ['Equalize', 0.4, null],
      ['Rotate', 0.8, 8],
    ],
    [
      ['Solarize', 0.6, 3],
      ['Equalize', 0.6, null],
    ],
    [
      ['Posterize', 0.8, 5],
      ['Equalize', 1.0, null],
    ],
    [
      ['Rotate', 0.2, 3],
      ['Solarize', 0.6, 8],
    ],
    [
      ['Equalize', 0.6, null],
      ['Posterize', 0.4, 6],
    ],
    [
      ['Rotate', 0.8, 8],
      ['Color', 0.4, 0],
    ],
    [
      ['Rotate', 0.4, 9],
      ['Equalize', 0.6, null],
    ],
    [
      ['Equalize', 0.0, null],
      ['Equalize', 0.8, null],
    ],
    [
      ['Invert', 0.6, null],
      ['Equalize', 1.0, null],
    ],
    [
      ['Color', 0.6, 4],
      ['Contrast', 1.0, 8],
    ],
    [
      ['Rotate', 0.8, 8],
      ['Color', 1.0, 2],
    ],
    [
      ['Color', 0.8, 8],
      ['Solarize', 0.8, 7],
    ],
    [
      ['Sharpness', 0.4, 7],
      ['Invert', 0.6, null],
    ],
    [
      ['ShearX', 0.6, 5],
      ['Equalize', 1.0, null],
    ],
    [
      ['Color', 0.4, 0],
      ['Equalize', 0.6, null],
    ],
    [
      ['Equalize', 0.4, null],
      ['Solarize', 0.2, 4],
    ],
    [
      ['Solarize', 0.6, 5],
      ['AutoContrast', 0.6, null],
    ],
    [
      ['Invert', 0.6, null],
      ['Equalize', 1.0, null],
    ],
    [
      ['Color', 0.6, 4],
      ['Contrast', 1.0, 8],
    ],
    [
      ['Equalize', 0.8, null],
      ['Equalize', 0.6, null],
    ],
  ],
  svhn: [
    [
      ['ShearX', 0.9, 4],
      ['Invert', 0.2, null],
    ],
    [
      ['ShearY', 0.9, 8],
      ['Invert', 0.7, null],
    ],
    [
      ['Equalize', 0.6, null],
      ['Solarize', 0.6, 6],
    ],
    [
      ['Invert', 0.9, null],
      ['Equalize', 0.6, null],
    ],
    [
      ['Equalize', 0.6, null],
      ['Rotate', 0.9, 3],
    ],
    [
      ['ShearX', 0.9, 4],
      ['AutoContrast', 0.8, null],
    ],
    [
      ['ShearY', 0.9, 8],
      ['Invert', 0.4, null],
    ],
    [
      ['ShearY', 0.9, 5],
      ['Solarize', 0.2, 6],
    ],
    [
      ['Invert', 0.9, null],
      ['AutoContrast', 0.8, null],
    ],
    [
      ['Equalize', 0.6, null],
      ['Rotate', 0.9, 3],
    ],
    [
      ['ShearX', 0.9, 4],
      ['Solarize', 0.3, 3],
    ],
    [
      ['ShearY', 0.8, 8],
      ['Invert', 0.7, null],
    ],
    [
      ['Equalize', 0.9, null],
      ['TranslateY', 0.6, 6],
    ],
    [
      ['Invert', 0.9, null],
      ['Equalize', 0.6, null],
    ],
    [
      ['Contrast', 0.3, 3],
      ['Rotate', 0.8, 4],
    ],
    [
      ['Invert', 0.8, null],
      ['TranslateY', 0.0, 2],
    ],
    [
      ['ShearY', 0.7, 6],
      ['Solarize', 0.4, 8],
    ],
    [
      ['Invert', 0.6, null],
      ['Rotate', 0.8, 4],
    ],
    [
      ['ShearY', 0.3, 7],
      ['TranslateX', 0.9, 3],
    ],
    [
      ['ShearX', 0.1, 6],
      ['Invert', 0.6, null],
    ],
    [
      ['Solarize', 0.7, 2],
      ['TranslateY', 0.6, 7],
    ],
    [
      ['ShearY', 0.8, 4],
      ['Invert', 0.8, null],
    ],
    [
      ['ShearX', 0.7, 9],
      ['TranslateY', 0.8, 3],
    ],
    [
      ['ShearY', 0.8, 5],
      ['AutoContrast', 0.7, null],
    ],
    [
      ['ShearX', 0.7, 2],
      ['Invert', 0.1, null],
    ],
  ],
};

const linspace = (a: number, b: number, n: number) =>
  Array.from({ length: n }, (_, i) => Math.fround(n === 1 ? a : a + ((b - a) * i) / (n - 1)));

/** torchvision's _augmentation_space: magnitude bins per op and whether the sign is random. */
export function augmentationSpace(
  bins: number,
  h: number,
  w: number,
  rand: boolean,
): Map<AAOpName, { magnitudes: number[]; signed: boolean }> {
  const s = new Map<AAOpName, { magnitudes: number[]; signed: boolean }>();
  if (rand) s.set('Identity', { magnitudes: [], signed: false });
  s.set('ShearX', { magnitudes: linspace(0, 0.3, bins), signed: true });
  s.set('ShearY', { magnitudes: linspace(0, 0.3, bins), signed: true });
  s.set('TranslateX', { magnitudes: linspace(0, (150 / 331) * w, bins), signed: true });
  s.set('TranslateY', { magnitudes: linspace(0, (150 / 331) * h, bins), signed: true });
  s.set('Rotate', { magnitudes: linspace(0, 30, bins), signed: true });
  for (const op of ['Brightness', 'Color', 'Contrast', 'Sharpness'] as const)
    s.set(op, { magnitudes: linspace(0, 0.9, bins), signed: true });
  const halfEven = (v: number) => {
    const r = Math.round(v);
    return Math.abs(v % 1) === 0.5 && r % 2 ? r - 1 : r;
  };
  s.set('Posterize', { magnitudes: Array.from({ length: bins }, (_, i) => 8 - halfEven(i / ((bins - 1) / 4))), signed: false });
  s.set('Solarize', { magnitudes: linspace(255, 0, bins), signed: false });
  s.set('AutoContrast', { magnitudes: [], signed: false });
  s.set('Equalize', { magnitudes: [], signed: false });
  if (!rand) s.set('Invert', { magnitudes: [], signed: false });
  return s;
}

export interface AutoAugmentOptions {
  /** auto: cifar10 for images of at most 64 px a side, else imagenet; randaugment: RandAugment(n, m). */
  policy: 'auto' | 'cifar10' | 'imagenet' | 'svhn' | 'randaugment';
  /** RandAugment: ops per image. */
  n: number;
  /** RandAugment: magnitude bin (0..bins-1). */
  m: number;
  /** RandAugment: number of magnitude bins (torchvision: 31). */
  bins: number;
  interpolation: 'nearest' | 'bilinear';
  /** Probability that an image gets the policy at all. */
  prob: number;
}

/** AutoAugment.forward for every image: a sub-policy id, two probabilities and two signs per image. Returns the ops of the two slots. */
export function autoAugmentOps(rng: Rng, n: number, h: number, w: number, policy: SubPolicy[], prob = 1): (AAOp | null)[][] {
  const space = augmentationSpace(10, h, w, false);
  const slots: (AAOp | null)[][] = [new Array(n).fill(null), new Array(n).fill(null)];
  for (let i = 0; i < n; i++) {
    if (prob < 1 && rng.next() >= prob) continue;
    const sub = policy[rng.int(policy.length)];
    sub.forEach(([name, p, bin], k) => {
      const pr = rng.next();
      const sign = rng.int(2);
      if (pr > p) return;
      const meta = space.get(name)!;
      let magnitude = bin !== null ? meta.magnitudes[bin] : 0;
      if (meta.signed && sign === 0) magnitude = -magnitude;
      slots[k][i] = { name, magnitude };
    });
  }
  return slots;
}

/** RandAugment.forward for every image: n ops drawn uniformly, magnitude bin m, random sign. */
export function randAugmentOps(
  rng: Rng,
  count: number,
  h: number,
  w: number,
  n: number,
  m: number,
  bins: number,
  prob = 1,
): (AAOp | null)[][] {
  const space = augmentationSpace(bins, h, w, true);
  const names = [...space.keys()];
  const slots: (AAOp | null)[][] = Array.from({ length: n }, () => new Array(count).fill(null));
  for (let i = 0; i < count; i++) {
    if (prob < 1 && rng.next() >= prob) continue;
    for (let k = 0; k < n; k++) {
      const name = names[rng.int(names.length)];
      const meta = space.get(name)!;
      let magnitude = meta.magnitudes.length ? meta.magnitudes[m] : 0;
      if (meta.signed && rng.int(2) === 1) magnitude = -magnitude;
      slots[k][i] = name === 'Identity' ? null : { name, magnitude };
    }
  }
  return slots;
}

export function autoAugmentBatch(x: tf.Tensor4D, rng: Rng, o: AutoAugmentOptions): tf.Tensor4D {
  const [n, h, w] = x.shape;
  const policy = o.policy === 'auto' ? (Math.max(h, w) <= 64 ? 'cifar10' : 'imagenet') : o.policy;
  const slots =
    policy === 'randaugment'
      ? randAugmentOps(rng, n, h, w, o.n, o.m, o.bins, o.prob)
      : autoAugmentOps(rng, n, h, w, POLICIES[policy], o.prob);
  return tf.tidy(() => {
    let y = x;
    for (const ops of slots) if (ops.some(Boolean)) y = applyOps(y, ops, o.interpolation);
    return y === x ? tf.clone(x) : y;
  });
}

export default definePlugin<AutoAugmentOptions>({
  name: PLUGIN_NAME,
  description:
    'AutoAugment (CIFAR-10, ImageNet, SVHN policies) and RandAugment(n, m) as torchvision 0.14 defines them, batched with per-image ops',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      policy: { enum: ['auto', 'cifar10', 'imagenet', 'svhn', 'randaugment'], default: 'auto' },
      n: { type: 'integer', minimum: 1, maximum: 10, default: 2 },
      m: { type: 'integer', minimum: 0, maximum: 100, default: 9 },
      bins: { type: 'integer', minimum: 2, maximum: 101, default: 31 },
      interpolation: { enum: ['nearest', 'bilinear'], default: 'nearest' },
      prob: { type: 'number', minimum: 0, maximum: 1, default: 1 },
    },
  },
  apply(api, options) {
    if (options.m >= options.bins)
      throw new TricksError(
        `plugin autoaugment: option m (${options.m}) must be below bins (${options.bins})`,
        'RandAugment magnitudes are bins 0..bins-1; torchvision uses m = 9 of 31 bins',
      );
    api.hooks.batch.tap({ name: PLUGIN_NAME, stage: STAGE }, (batch: Batch, ctx) => ({
      ...batch,
      x: autoAugmentBatch(batch.x, ctx.rng, options),
    }));
  },
});
