import * as tf from '@tensorflow/tfjs-core';
import type { Box } from './geometry.js';

/** A [B, H, W, 1] float mask that is 1 inside each image's box (null: no box). */
export function boxMask(b: number, h: number, w: number, boxes: (Box | null)[]): tf.Tensor4D {
  const t = new Float32Array(b * 4);
  for (let n = 0; n < b; n++) {
    const box = boxes[n];
    if (box) t.set([box.top, box.top + box.height, box.left, box.left + box.width], n * 4);
  }
  return tf.tidy(() => {
    const p = tf.tensor2d(t, [b, 4]);
    const [y0, y1, x0, x1] = tf.split(p, 4, 1).map((v) => tf.reshape(v, [b, 1, 1, 1]));
    const rows = tf.reshape(tf.range(0, h, 1, 'float32'), [1, h, 1, 1]);
    const cols = tf.reshape(tf.range(0, w, 1, 'float32'), [1, 1, w, 1]);
    const inRows = tf.logicalAnd(tf.greaterEqual(rows, y0), tf.less(rows, y1));
    const inCols = tf.logicalAnd(tf.greaterEqual(cols, x0), tf.less(cols, x1));
    return tf.cast(tf.logicalAnd(inRows, inCols), 'float32') as tf.Tensor4D;
  });
}

/**
 * F.erase with one box per image: pixels inside the box become `value` (a number, or 'random' for
 * per-pixel standard normal noise drawn from the seeded values passed in `noise`).
 */
export function erase(x: tf.Tensor4D, boxes: (Box | null)[], value: number | tf.Tensor4D = 0): tf.Tensor4D {
  const [b, h, w] = x.shape;
  return tf.tidy(() => {
    const m = boxMask(b, h, w, boxes);
    const fill = typeof value === 'number' ? tf.scalar(value) : value;
    return tf.add(tf.mul(x, tf.sub(1, m)), tf.mul(fill, m)) as tf.Tensor4D;
  });
}
