import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { ContainerModule } from 'inversify';
import { definePlugin, defaultInference, TOKENS, TricksError, type InferenceForward, type JSONSchema } from '@tricks/core';
import { resizedCrop, roundHalfEven } from '@tricks/helper-augment';

export const PLUGIN_NAME = 'tta';

/** The views evaluation averages over. */
export const VIEWS = ['flip', 'five-crop', 'ten-crop'] as const;
export type TtaViews = (typeof VIEWS)[number];

export interface TtaOptions {
  /**
   * 'flip': the image and its mirror (2 views). 'five-crop': torchvision's FiveCrop (4 corners + centre) of the
   * image resized by 1 / cropPct (5 views). 'ten-crop': TenCrop, the five crops of the image and of its mirror (10).
   */
  views: TtaViews;
  /** The crops' share of the resized image's side: the image is resized to floor(side / cropPct) first (timm's crop_pct). */
  cropPct: number;
  /**
   * When above 0, the crops come from the image zero-padded by this many pixels instead of resized: torchvision's
   * Pad(padding) + FiveCrop, i.e. the image and its four diagonal shifts, as pad-crop augmentation (CIFAR's 4) trains.
   */
  padding: number;
  /** 'probs': the mean of the views' softmax probabilities (fastai's tta); 'logits': the mean of their logits (torchvision's TenCrop example). */
  merge: 'probs' | 'logits';
}

export const schema: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    views: { enum: [...VIEWS], default: 'flip' },
    cropPct: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.875 },
    padding: { type: 'integer', minimum: 0, default: 0 },
    merge: { enum: ['probs', 'logits'], default: 'probs' },
  },
};

export const DEFAULTS: TtaOptions = { views: 'flip', cropPct: 0.875, padding: 0, merge: 'probs' };

/** The number of views a setting makes. */
export const viewCount = (views: TtaViews) => ({ flip: 2, 'five-crop': 5, 'ten-crop': 10 })[views];

/** torchvision's five_crop of an NHWC batch, in its order: top-left, top-right, bottom-left, bottom-right, centre. */
function fiveCrop(x: tf.Tensor4D, h: number, w: number): tf.Tensor4D[] {
  const [, H, W] = x.shape;
  const top = roundHalfEven((H - h) / 2),
    left = roundHalfEven((W - w) / 2);
  const at = (t: number, l: number) => tf.slice(x, [0, t, l, 0], [-1, h, w, -1]);
  return [at(0, 0), at(0, W - w), at(H - h, 0), at(H - h, W - w), at(top, left)];
}

/**
 * The views of a batch, each the batch's shape. Crops follow torchvision: Resize((floor(h / cropPct), floor(w / cropPct)))
 * (bilinear, align_corners=False, no antialias: the tensor default), or Pad(padding) when padding > 0, then
 * FiveCrop((h, w)) / TenCrop((h, w)), whose second five come from the mirrored image. The caller disposes the views.
 */
export function ttaViews(x: tf.Tensor4D, views: TtaViews, cropPct = DEFAULTS.cropPct, padding = 0): tf.Tensor4D[] {
  const [n, h, w] = x.shape;
  if (views === 'flip') return [tf.clone(x), tf.reverse(x, 2)];
  const H = Math.floor(h / cropPct),
    W = Math.floor(w / cropPct);
  const p = padding;
  return tf.tidy(() => {
    const big =
      p > 0
        ? tf.pad(x, [
            [0, 0],
            [p, p],
            [p, p],
            [0, 0],
          ])
        : resizedCrop(
            x,
            Array.from({ length: n }, () => ({ top: 0, left: 0, height: h, width: w })),
            [H, W],
          );
    const crops = fiveCrop(big, h, w);
    return views === 'ten-crop' ? [...crops, ...fiveCrop(tf.reverse(big, 2), h, w)] : crops;
  });
}

/**
 * An evaluation forward (TOKENS.Inference) that scores the merged views: with merge 'probs', log of the mean
 * softmax probability (so evaluation's cross-entropy and top-k read the averaged probabilities); with 'logits',
 * the mean logits. Each view runs through `base` (model.predict by default) on its own, so memory grows by one view.
 */
type SyncForward = (model: LayersModel, x: tf.Tensor4D) => tf.Tensor2D;

export function ttaInference(options: Partial<TtaOptions> = {}, base: SyncForward = defaultInference): SyncForward {
  const o = { ...DEFAULTS, ...options };
  if (!VIEWS.includes(o.views)) throw new TricksError(`tta: unknown views "${String(o.views)}"`, `choose one of ${VIEWS.join(', ')}`);
  if (!(o.cropPct > 0 && o.cropPct <= 1))
    throw new TricksError(`tta: cropPct ${o.cropPct} is not in (0, 1]`, 'the crop is this share of the resized side, e.g. 0.875');
  if (!(Number.isInteger(o.padding) && o.padding >= 0))
    throw new TricksError(`tta: padding ${o.padding} is not a whole number >= 0`, 'give the pixels of padding, e.g. 2 for 28-px images');
  return (model: LayersModel, x: tf.Tensor4D) => {
    const views = ttaViews(x, o.views, o.cropPct, o.padding);
    let sum: tf.Tensor2D | undefined;
    for (const v of views) {
      const out = tf.tidy(() => {
        const logits = base(model, v);
        return o.merge === 'probs' ? tf.softmax(logits) : logits;
      });
      v.dispose();
      const next = sum ? tf.add(sum, out) : out;
      if (sum) tf.dispose([sum, out]);
      sum = next as tf.Tensor2D;
    }
    const merged = tf.tidy(() => {
      const mean = tf.div(sum!, views.length);
      // clipped so that a probability of 0 in every view scores a large finite loss rather than infinity
      return (o.merge === 'probs' ? tf.log(tf.maximum(mean, 1e-30)) : mean) as tf.Tensor2D;
    });
    sum!.dispose();
    return merged;
  };
}

/** A module that makes the run's evaluation use TTA (rebinds TOKENS.Inference). */
export const ttaModule = (o: Partial<TtaOptions>) =>
  new ContainerModule(({ rebind }) => {
    rebind<InferenceForward>(TOKENS.Inference).toConstantValue(ttaInference(o));
  });

/**
 * Test-time augmentation as a plugin: every evaluation of the run (the per-epoch validation, the final
 * evaluation, report.html) scores the merged views. `tricks eval --tta VIEWS` does the same for a saved model.
 */
export default definePlugin<TtaOptions>({
  name: PLUGIN_NAME,
  description: 'test-time augmentation: evaluation averages the predictions of the image and its mirror, or of five/ten crops',
  schema,
  apply() {},
  modules: (o) => [ttaModule(o)],
});
