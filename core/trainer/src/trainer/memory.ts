// Micro-batches: each batch computed as several smaller ones whose gradients are summed before the one
// optimizer step (timm's --grad-accum-steps, Lightning's accumulate_grad_batches, with the batch size kept as
// the effective batch), on request (gradAccum) or because a step would not fit the backend's memory
// (@tricks/backend-wasm plans that for the 32-bit wasm heap and sets ctx.microBatches in setup).
import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '../contract.js';
import { TricksError } from '../hooks/errors.js';

/** [start, end) rows of `n` micro-batches of a batch of `size`, sizes differing by at most one. */
export function microBatchRanges(size: number, n: number): [number, number][] {
  const parts = Math.max(1, Math.min(n, size));
  const out: [number, number][] = [];
  for (let i = 0, start = 0; i < parts; i++) {
    const end = start + Math.floor(size / parts) + (i < size % parts ? 1 : 0);
    out.push([start, end]);
    start = end;
  }
  return out;
}

/**
 * Rows [start, end) of a batch: x, y, and every per-sample meta field (a typed array or a tensor with one
 * row per sample: indices, labels, sampleWeights, a plugin's teacher logits...). Other meta is shared.
 */
export function sliceBatch(batch: Batch, start: number, end: number): Batch {
  const n = batch.x.shape[0];
  const rows = <T>(v: T): T => {
    if (v instanceof tf.Tensor && v.rank > 0 && v.shape[0] === n) return tf.slice(v, start, end - start) as T;
    if (ArrayBuffer.isView(v) && !(v instanceof DataView) && (v as unknown as ArrayLike<number>).length === n)
      return (v as unknown as Int32Array).subarray(start, end) as T;
    return v;
  };
  const meta = Object.fromEntries(Object.entries(batch.meta).map(([k, v]) => [k, rows(v)])) as Batch['meta'];
  return { x: rows(batch.x), y: rows(batch.y), meta };
}

/** The error for a step that ran out of memory, naming the run's model, input size and batch. */
export function outOfMemory(where: string, batchSize: number, detail: string, microBatches = 1): TricksError {
  const micro = microBatches > 1 ? ` in ${microBatches} micro-batches` : '';
  return new TricksError(
    `out of memory: a training step of ${where} with batch ${batchSize}${micro} does not fit (${detail})`,
    `use a smaller --batch-size, or --grad-accum N to compute each batch as N micro-batches; the last checkpoint was not touched`,
  );
}

/**
 * Whether an error is a backend running out of memory: wasm's abort or out-of-bounds access, or a failed allocation.
 * A fault on a wasm kernel thread is not: those threads never allocate, so it is a kernel's own error and is reported
 * as it is (it was called out of memory before the late-notify rerun of issue 18 was found).
 */
export function isOutOfMemory(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const m = `${e.name}: ${e.message}`;
  if (/failed on a kernel thread/.test(m)) return false;
  return (
    /RuntimeError: (Aborted|memory access out of bounds)/.test(m) ||
    /Array buffer allocation failed|Invalid typed array length|out of memory|Cannot allocate Wasm memory|WebAssembly\.Memory\(\): could not allocate/i.test(
      m,
    )
  );
}
