import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '@tricks/core';
import type { Box } from './geometry.js';

/** What a mixing tap records in batch.meta.mix, so later taps (and logs) know the batch was mixed. */
export interface MixInfo {
  kind: 'mixup' | 'cutmix';
  /** Weight of the batch's own images and targets. */
  lambda: number;
  /** Row i was mixed with row perm[i]. */
  perm: Int32Array;
  box?: Box;
}

/** Rows of t in the order of perm. */
export function permuteRows<T extends tf.Tensor>(t: T, perm: Int32Array): T {
  return tf.gather(t, tf.tensor1d(perm, 'int32')) as T;
}

/** mixup (Zhang et al. 2018): x = lam x + (1 - lam) x[perm], y likewise, so targets become soft. */
export function mixupBatch(batch: Batch, lambda: number, perm: Int32Array): Batch {
  const x = tf.add(tf.mul(batch.x, lambda), tf.mul(permuteRows(batch.x, perm), 1 - lambda)) as tf.Tensor4D;
  const y = tf.add(tf.mul(batch.y, lambda), tf.mul(permuteRows(batch.y, perm), 1 - lambda)) as tf.Tensor2D;
  const mix: MixInfo = { kind: 'mixup', lambda, perm };
  return { x, y, meta: { ...batch.meta, mix } };
}
