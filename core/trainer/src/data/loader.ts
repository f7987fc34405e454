import type { BatchOptions, Dataset, DecodeCrop, RawBatch } from './dataset.js';
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
 * The per-item part of a run's DecodePlan the loader uses: the crop of an item of a given source size, drawn
 * from that item's own generator.
 */
export interface LoaderCrop {
  crop(srcHeight: number, srcWidth: number, rng: Rng): DecodeCrop;
  /** The DecodePlan's pixel map, for a dataset that converts to float while it decodes. */
  pixels?: { scale: number[]; offset: number[] };
  /** Seed of the item generators (the run's seed; a plugin may mix in a salt of its own). */
  seed: number;
  epoch: number;
}

/**
 * The generator of the item at `position` in the order of `epoch`: a function of (seed, epoch, position) alone,
 * so a crop drawn at decode time is the same whatever the prefetch depth, the order decodes finish in, or the
 * step a run resumed from.
 */
export function itemRng(seed: number, epoch: number, position: number): Rng {
  let h = Math.imul((seed ^ 0x6a09e667) >>> 0, 0x85ebca6b) ^ Math.imul(epoch + 1, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ Math.imul(position + 1, 0x27d4eb2f);
  return new Rng((h ^ (h >>> 13)) >>> 0);
}

/**
 * Yields batches of `indices` in order, starting at batch `from`, keeping `prefetch` batches in flight
 * so decoding overlaps training. A last partial batch is dropped when dropLast is set. With `crop` and a
 * dataset that can (Dataset.decodeCrop), items are cropped while they decode, off the training thread, into a
 * ring of prefetch + 2 float buffers: a crop-at-decode batch's `floats` are reused once the next batch after it
 * has been asked for (copy them to keep them longer; toBatch copies them into the batch tensor).
 */
export async function* loadBatches(
  dataset: Dataset,
  indices: Int32Array,
  batchSize: number,
  opts: { from?: number; dropLast?: boolean; prefetch?: number; crop?: LoaderCrop } = {},
): AsyncGenerator<LoadedBatch> {
  const n = opts.dropLast ? Math.floor(indices.length / batchSize) : Math.ceil(indices.length / batchSize);
  const prefetch = Math.max(1, opts.prefetch ?? 2);
  const pending: Promise<RawBatch>[] = [];
  let next = opts.from ?? 0;
  // crop-at-decode batches land in a ring of float buffers: the prefetched ones, the one yielded, one spare
  // (the consumer is done with a batch when it asks for the next one, as the trainer is)
  const ring: Float32Array[] = [];
  let slot = 0;
  const [h, w, c] = dataset.shape;
  const bufferOf = (rows: number) => {
    if (ring.length < prefetch + 2) ring.push(new Float32Array(new SharedArrayBuffer(batchSize * h * w * c * 4)));
    const b = ring[slot++ % ring.length];
    return b.subarray(0, rows * h * w * c);
  };
  const issue = () => {
    if (next >= n) return;
    const idx = indices.subarray(next * batchSize, Math.min(indices.length, (next + 1) * batchSize));
    const cr = opts.crop;
    let options: BatchOptions | undefined;
    if (cr && dataset.decodeCrop) {
      const first = next * batchSize;
      options = {
        crop: (k, sh, sw) => cr.crop(sh, sw, itemRng(cr.seed, cr.epoch, first + k)),
        pixels: cr.pixels,
        into: bufferOf(idx.length),
      };
    }
    pending.push(dataset.getBatch(idx, options));
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
