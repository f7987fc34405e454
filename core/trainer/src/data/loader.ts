import type { Dataset, RawBatch } from './dataset.js';
import { Rng } from '../util/rng.js';

/** Orders a dataset's indices for one epoch. A service: class-balance rebinds it with a re-sampler. */
export interface Sampler {
  /** The indices of one epoch, drawn from a generator seeded by (seed, epoch), so a resumed run sees the same order. */
  epochIndices(dataset: Dataset, epoch: number, seed: number): Int32Array;
}

export function epochRng(seed: number, epoch: number): Rng {
  return new Rng((Math.imul(seed + 1, 0x2545f491) ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
}

/** Seeded shuffle without replacement: every item once per epoch. */
export class ShuffleSampler implements Sampler {
  epochIndices(dataset: Dataset, epoch: number, seed: number): Int32Array {
    return epochRng(seed, epoch).permutation(dataset.length);
  }
}

export interface LoadedBatch extends RawBatch {
  indices: Int32Array;
  /** Milliseconds the consumer waited for this batch (0 when prefetch kept up). */
  waitMs: number;
}

/**
 * Yields batches of `indices` in order, starting at batch `from`, keeping `prefetch` batches in flight
 * so decoding overlaps training. A last partial batch is dropped when dropLast is set.
 */
export async function* loadBatches(
  dataset: Dataset,
  indices: Int32Array,
  batchSize: number,
  opts: { from?: number; dropLast?: boolean; prefetch?: number } = {},
): AsyncGenerator<LoadedBatch> {
  const n = opts.dropLast ? Math.floor(indices.length / batchSize) : Math.ceil(indices.length / batchSize);
  const prefetch = Math.max(1, opts.prefetch ?? 2);
  const pending: Promise<RawBatch>[] = [];
  let next = opts.from ?? 0;
  const issue = () => {
    if (next >= n) return;
    const idx = indices.subarray(next * batchSize, Math.min(indices.length, (next + 1) * batchSize));
    pending.push(dataset.getBatch(idx));
    next++;
  };
  for (let i = 0; i < prefetch; i++) issue();
  for (let b = opts.from ?? 0; b < n; b++) {
    const t0 = performance.now();
    const raw = await pending.shift()!;
    const waitMs = performance.now() - t0;
    // In-memory batches resolve at once, and awaiting them only runs microtasks: give the event loop
    // a turn each batch so signal handlers, timers and lock renewals (BullMQ) are not starved.
    await new Promise<void>((r) => setImmediate(r));
    issue();
    yield { ...raw, indices: indices.slice(b * batchSize, Math.min(indices.length, (b + 1) * batchSize)), waitMs };
  }
}

export function numBatches(length: number, batchSize: number, dropLast: boolean): number {
  return dropLast ? Math.floor(length / batchSize) : Math.ceil(length / batchSize);
}
