import * as tf from '@tensorflow/tfjs-core';
import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  affineBatch,
  affineMatrix,
  erase,
  normalize,
  padCropFast,
  randomResizedCropBox,
  resizedCrop,
  resizedCropFast,
  type Box,
} from '@tricks/helper-augment';
import { definePlugin, STAGE_AUGMENT, type Batch, type Rng } from '@tricks/core';
import { decideDecode, type Fold } from './decode.js';
import { cutoutBox, randomAffineParams, randomErasingBox } from './params.js';
import { resolvePipeline, type AugmentOptions, type Pipeline } from './pipeline.js';

export { decideDecode, decodeCropDraw, type DecodeDecision, type Fold } from './decode.js';
export { cutoutBox, randomAffineParams, randomErasingBox } from './params.js';
export { resolvePipeline, type AugmentOptions, type Pipeline } from './pipeline.js';

export const PLUGIN_NAME = 'augment';
/** Crop, flip, affine, colour: first on the batch hook. */
export const STAGE_GEOMETRY = STAGE_AUGMENT;
/** Normalize and erasing come after AutoAugment (which taps between), as in torchvision's usual order. */
export const STAGE_NORMALIZE = STAGE_AUGMENT + 50;

const flags = (rng: Rng, n: number, p: number) => Array.from({ length: n }, () => p > 0 && rng.next() < p);

/** Crop, flip, rotate/affine and colour jitter of one batch with the run's Rng; `cropped`: crop and flip were done at decode time. */
export function augmentGeometryAndColour(x: tf.Tensor4D, rng: Rng, p: Pipeline, cropped = false): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  return tf.tidy(() => {
    let y = x;
    if (cropped) {
      // RandomResizedCrop and flip were drawn per item and applied while decoding (decode.ts)
    } else if (p.crop?.kind === 'rrc') {
      const rrc = p.crop;
      const boxes: Box[] = Array.from({ length: n }, () => randomResizedCropBox(rng, h, w, rrc.scale, rrc.ratio));
      y = (p.exact ? resizedCrop : resizedCropFast)(y, boxes, [h, w], flags(rng, n, p.flip));
    } else if (p.crop?.kind === 'pad') {
      const pad = p.crop.padding;
      const offsets = Array.from({ length: n }, () => ({ top: rng.int(2 * pad + 1), left: rng.int(2 * pad + 1) }));
      y = padCropFast(y, pad, offsets, flags(rng, n, p.flip));
    } else if (p.flip > 0) {
      y = padCropFast(
        y,
        0,
        Array.from({ length: n }, () => ({ top: 0, left: 0 })),
        flags(rng, n, p.flip),
      );
    }
    if (p.rotate > 0 || p.affine) {
      const a = p.affine ?? {};
      const deg = a.degrees ?? p.rotate;
      const mats = Array.from({ length: n }, () =>
        affineMatrix(
          randomAffineParams(rng, h, w, {
            degrees: [-deg, deg],
            translate: a.translate,
            scale: a.scale,
            shear: a.shear ? [-a.shear, a.shear, 0, 0] : undefined,
          }),
          h,
          w,
        ),
      );
      y = affineBatch(y, mats, 'nearest');
    }
    const cj = p.colorJitter;
    if (cj && (cj.brightness || cj.contrast || cj.saturation || cj.hue)) {
      const on = flags(rng, n, cj.prob ?? 1);
      const range = (v: number | undefined, centre: number) => (v ? [Math.max(0, centre - v), centre + v] : null);
      const draw = (r: number[] | null, identity: number) => on.map((o) => (o && r ? rng.uniform(r[0], r[1]) : identity));
      const b = draw(range(cj.brightness, 1), 1),
        ct = draw(range(cj.contrast, 1), 1),
        s = draw(range(cj.saturation, 1), 1);
      const hu = draw(cj.hue ? [-cj.hue, cj.hue] : null, 0);
      // torchvision draws one order per image; a batch shares one seeded order here
      for (const k of rng.permutation(4)) {
        if (k === 0 && cj.brightness) y = adjustBrightness(y, b);
        if (k === 1 && cj.contrast) y = adjustContrast(y, ct);
        if (k === 2 && cj.saturation && c === 3) y = adjustSaturation(y, s);
        if (k === 3 && cj.hue && c === 3) y = adjustHue(y, hu);
      }
    }
    // nothing to do: x itself (tf.clone copies the whole batch on wasm, whose Identity kernel is a copy)
    return y;
  });
}

/**
 * Normalize, then random erasing and cutout (the order of torchvision's usual recipe). `fold`: what of Normalize
 * the uint8 conversion did already ('normalized': all of it; 'scaled': the division, the mean is left to subtract).
 */
export function augmentNormalizeAndErase(x: tf.Tensor4D, rng: Rng | null, p: Pipeline, fold: Fold = null): tf.Tensor4D {
  const [n, h, w] = x.shape;
  return tf.tidy(() => {
    let y = x;
    if (p.normalize && fold === 'scaled') {
      const { mean, std } = p.normalize;
      y = tf.sub(x, tf.tensor1d(mean.map((m, i) => m / std[i]))) as tf.Tensor4D;
    } else if (p.normalize && fold !== 'normalized') y = normalize(x, p.normalize.mean, p.normalize.std);
    if (rng && p.erasing) {
      const e = p.erasing;
      const boxes = flags(rng, n, e.prob ?? 0.5).map((on) => (on ? randomErasingBox(rng, h, w, e.scale, e.ratio) : null));
      if (boxes.some(Boolean)) y = erase(y, boxes, e.value ?? 0);
    }
    if (rng && p.cutout) {
      const co = p.cutout;
      const boxes = flags(rng, n, co.prob ?? 1).map((on) => (on ? cutoutBox(rng, h, w, co.size) : null));
      if (boxes.some(Boolean)) y = erase(y, boxes, 0);
    }
    // nothing to do: x itself (tf.clone copies the whole batch on wasm, whose Identity kernel is a copy)
    return y;
  });
}

let instances = 0;

const range2 = { type: 'array', items: { type: 'number', minimum: 0 }, minItems: 2, maxItems: 2 };

export default definePlugin<AugmentOptions>({
  name: PLUGIN_NAME,
  description:
    'batched augmentation on the training backend (torchvision semantics): random resized crop or pad-crop, flip, rotation/affine, colour jitter, normalize, random erasing, cutout',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      preset: { enum: ['auto', 'cifar', 'imagenet', 'none'], default: 'auto' },
      randomResizedCrop: {
        anyOf: [
          { type: 'boolean' },
          { type: 'null' },
          { type: 'object', additionalProperties: false, properties: { scale: range2, ratio: range2 } },
        ],
        default: null,
      },
      padCrop: { anyOf: [{ type: 'integer', minimum: 0, maximum: 64 }, { type: 'boolean' }, { type: 'null' }], default: null },
      flip: { type: ['number', 'null'], minimum: 0, maximum: 1, default: null },
      rotate: { type: 'number', minimum: 0, maximum: 180, default: 0 },
      affine: {
        anyOf: [
          { type: 'null' },
          {
            type: 'object',
            additionalProperties: false,
            properties: {
              degrees: { type: 'number', minimum: 0, maximum: 180 },
              translate: range2,
              scale: range2,
              shear: { type: 'number', minimum: 0, maximum: 89 },
            },
          },
        ],
        default: null,
      },
      colorJitter: {
        anyOf: [
          { type: 'null' },
          {
            type: 'object',
            additionalProperties: false,
            properties: {
              brightness: { type: 'number', minimum: 0 },
              contrast: { type: 'number', minimum: 0 },
              saturation: { type: 'number', minimum: 0 },
              hue: { type: 'number', minimum: 0, maximum: 0.5 },
              prob: { type: 'number', minimum: 0, maximum: 1 },
            },
          },
        ],
        default: null,
      },
      normalize: {
        anyOf: [
          { type: 'boolean' },
          { enum: ['imagenet'] },
          {
            type: 'object',
            additionalProperties: false,
            required: ['mean', 'std'],
            properties: {
              mean: { type: 'array', items: { type: 'number' }, minItems: 1, maxItems: 4 },
              std: { type: 'array', items: { type: 'number', exclusiveMinimum: 0 }, minItems: 1, maxItems: 4 },
            },
          },
        ],
        default: true,
      },
      erasing: {
        anyOf: [
          { type: 'null' },
          {
            type: 'object',
            additionalProperties: false,
            properties: { prob: { type: 'number', minimum: 0, maximum: 1 }, scale: range2, ratio: range2, value: { type: 'number' } },
          },
        ],
        default: null,
      },
      exact: { type: 'boolean', default: false },
      decodeCrop: { type: 'boolean', default: true },
      foldNormalize: { type: 'boolean', default: true },
      cutout: {
        anyOf: [
          { type: 'null' },
          {
            type: 'object',
            additionalProperties: false,
            required: ['size'],
            properties: { size: { type: 'integer', minimum: 1 }, prob: { type: 'number', minimum: 0, maximum: 1 } },
          },
        ],
        default: null,
      },
    },
  },
  apply(api, options) {
    let pipeline: Pipeline | undefined;
    const get = (x: tf.Tensor4D) => (pipeline ??= resolvePipeline(options, x.shape[1], x.shape[2], x.shape[3]));
    // this instance's name in DecodePlans and batch.meta.decoded (two augment instances must not skip each other's work)
    const owner = `${PLUGIN_NAME}#${++instances}`;
    let fold: Fold = null;
    api.hooks.decode.tap({ name: PLUGIN_NAME, stage: STAGE_GEOMETRY }, (plan, info) => {
      const [h, w, c] = info.dataset.shape;
      const d = decideDecode(resolvePipeline(options, h, w, c), info, plan, owner, {
        decodeCrop: options.decodeCrop,
        fold: options.foldNormalize,
        tapName: PLUGIN_NAME,
        normalizeStage: STAGE_NORMALIZE,
      });
      fold = d.fold;
      return d.plan;
    });
    api.hooks.batch.tap({ name: PLUGIN_NAME, stage: STAGE_GEOMETRY }, (batch: Batch, ctx) => ({
      ...batch,
      x: augmentGeometryAndColour(batch.x, ctx.rng, get(batch.x), batch.meta.decoded?.cropped === owner),
    }));
    api.hooks.batch.tap({ name: PLUGIN_NAME, stage: STAGE_NORMALIZE }, (batch: Batch, ctx) => ({
      ...batch,
      x: augmentNormalizeAndErase(batch.x, ctx.rng, get(batch.x), batch.meta.decoded?.pixels === owner ? fold : null),
    }));
    api.hooks.evalBatch.tap({ name: PLUGIN_NAME, stage: STAGE_NORMALIZE }, (batch: Batch) => {
      const p = get(batch.x);
      return p.normalize ? { ...batch, x: normalize(batch.x, p.normalize.mean, p.normalize.std) } : batch;
    });
    api.hooks.export.tapPromise({ name: PLUGIN_NAME, stage: STAGE_NORMALIZE }, async (artifact) => {
      // the exported model expects normalized input: say so next to the weights
      const p = pipeline;
      if (p?.normalize)
        artifact.report = { ...artifact.report, preprocess: { scale: 1 / 255, mean: p.normalize.mean, std: p.normalize.std } };
      return artifact;
    });
  },
});
