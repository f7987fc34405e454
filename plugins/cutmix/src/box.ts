import * as tf from '@tensorflow/tfjs-core';
import type { Batch, Rng } from '@tricks/core';
import { boxMask, permuteRows, type Box, type MixInfo } from '@tricks/helper-augment';

/**
 * CutMix's box (Yun et al. 2019, the authors' rand_bbox): side sqrt(1 - lam) of each image side, truncated,
 * centre uniform over the image, clipped at the borders. Returns the box and lambda corrected to its area.
 */
export function cutmixBox(rng: Rng, h: number, w: number, lambda: number): { box: Box; lambda: number } {
  const cut = Math.sqrt(1 - lambda);
  const cw = Math.trunc(w * cut),
    ch = Math.trunc(h * cut);
  const cx = rng.int(w),
    cy = rng.int(h);
  const x1 = Math.min(Math.max(cx - Math.floor(cw / 2), 0), w),
    x2 = Math.min(Math.max(cx + Math.floor(cw / 2), 0), w);
  const y1 = Math.min(Math.max(cy - Math.floor(ch / 2), 0), h),
    y2 = Math.min(Math.max(cy + Math.floor(ch / 2), 0), h);
  const box = { top: y1, left: x1, height: y2 - y1, width: x2 - x1 };
  return { box, lambda: 1 - (box.height * box.width) / (h * w) };
}

/** Pastes the box of x[perm] into every image; targets mix with the area-corrected lambda. */
export function cutmixBatch(batch: Batch, box: Box, lambda: number, perm: Int32Array): Batch {
  const [, h, w] = batch.x.shape;
  const m = boxMask(1, h, w, [box]);
  const x = tf.add(tf.mul(batch.x, tf.sub(1, m)), tf.mul(permuteRows(batch.x, perm), m)) as tf.Tensor4D;
  const y = tf.add(tf.mul(batch.y, lambda), tf.mul(permuteRows(batch.y, perm), 1 - lambda)) as tf.Tensor2D;
  const mix: MixInfo = { kind: 'cutmix', lambda, perm, box };
  return { x, y, meta: { ...batch.meta, mix } };
}
