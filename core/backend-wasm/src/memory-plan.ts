// The wasm heap is 32-bit: 4 GB at most. Before training, the memory plan measures what a step of this model
// needs (two probe steps of 1 and 4 random images, their peak allocation read from the heap's allocator) and, when
// the batch would not fit, computes each batch as micro-batches (core's ctx.microBatches); the validation batch is
// planned the same way (docs/backends.md, "Memory"). The wasm built-in runs it in the setup hook.
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { outOfMemory, type Logger } from '@tricks/core';
import { applyTraining } from './frugal-forward.js';
import { variableGradsFrugal } from './frugal-gradients.js';

/** A heap the plan can measure: what is left, and the peak a function allocates. */
export interface BackendMemory {
  /** Bytes a training step may still allocate: the limit less what is allocated now, less a margin. */
  available(): number;
  /** Runs f; returns the most bytes allocated at once while it ran, above what was allocated before. */
  peakDuring(f: () => void): number;
}

interface HeapFunctions {
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}

/** The most a 32-bit wasm heap can grow to (emscripten's getHeapMax() in tfjs-backend-wasm). */
export const WASM_HEAP_MAX = 4294901760;

/**
 * Bytes allocated on the tfjs heap through its JS-side _malloc/_free (every tensor, and the training kernels'
 * scratch; XNNPACK's allocations inside the module are not seen), with a high-water mark. Installed once per
 * module, when the backend is activated (allocations before that are not counted).
 */
interface HeapTracker {
  live: number;
  peak: number;
}
const trackers = new WeakMap<HeapFunctions, HeapTracker>();
export function heapTracker(): HeapTracker {
  const w = (tf.backend() as unknown as { wasm: HeapFunctions }).wasm;
  let t = trackers.get(w);
  if (t) return t;
  // emscripten's first call of _malloc/_free replaces the property with the raw export: make that happen first
  w._free(w._malloc(16));
  const { _malloc: malloc, _free: free } = w;
  const sizes = new Map<number, number>();
  const tracker: HeapTracker = { live: 0, peak: 0 };
  w._malloc = (n) => {
    const p = malloc(n) >>> 0;
    if (p !== 0) {
      sizes.set(p, n);
      tracker.live += n;
      if (tracker.live > tracker.peak) tracker.peak = tracker.live;
    }
    return p;
  };
  w._free = (p) => {
    const n = sizes.get(p >>> 0);
    if (n !== undefined) {
      tracker.live -= n;
      sizes.delete(p >>> 0);
    }
    free(p);
  };
  trackers.set(w, (t = tracker));
  return t;
}

/**
 * The wasm heap as the trainer plans with it: 85% of the 4 GB limit (the rest for fragmentation, XNNPACK's
 * caches and the kernel threads' stacks) less what is allocated now. TRICKS_WASM_HEAP_MB lowers the limit
 * (tests force a small budget with it; the real heap is not changed).
 */
export const wasmMemory: BackendMemory = {
  available() {
    const env = Number(process.env.TRICKS_WASM_HEAP_MB);
    const max = Number.isFinite(env) && env > 0 ? Math.min(env * 2 ** 20, WASM_HEAP_MAX) : WASM_HEAP_MAX;
    return Math.max(0, 0.85 * max - heapTracker().live);
  },
  peakDuring(f) {
    const t = heapTracker();
    const start = t.live;
    t.peak = start;
    f();
    return t.peak - start;
  },
};

const MB = (bytes: number) => `${Math.round(bytes / 2 ** 20).toLocaleString('en-US')} MB`;

export interface MemoryPlanInput {
  model: LayersModel;
  modelName: string;
  /** [height, width, channels] of one image. */
  inputShape: number[];
  numClasses: number;
  batchSize: number;
  evalBatchSize: number;
  /** The user's gradAccum, if any. */
  gradAccum?: number;
  /** The active backend's memory, when it has a hard limit (wasm); undefined skips the automatic split. */
  memory?: BackendMemory;
  logger: Logger;
}

export interface MemoryPlan {
  /** Micro-batches per batch (1: the whole batch at once). */
  microBatches: number;
  /** Bytes a step of one micro-batch was estimated to need (when measured). */
  stepBytes?: number;
  budgetBytes?: number;
  /** The validation batch that fits (config.evalBatchSize or less). */
  evalBatchSize: number;
}

/** Peak bytes of one training step of `m` random images, with the model's statistics restored afterwards. */
function probeStep(model: LayersModel, inputShape: number[], numClasses: number, m: number, memory: BackendMemory): number {
  const saved = model.nonTrainableWeights.map((w) => tf.clone(w.read()));
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  try {
    return memory.peakDuring(() =>
      tf.tidy(() => {
        const x = tf.randomNormal([m, ...inputShape]);
        const y = tf.oneHot(tf.zeros([m], 'int32') as tf.Tensor1D, numClasses);
        const { value, grads } = variableGradsFrugal(() => tf.losses.softmaxCrossEntropy(y, applyTraining(model, x)) as tf.Scalar, vars);
        value.dataSync();
        tf.dispose([value, ...Object.values(grads)]);
      }),
    );
  } finally {
    model.nonTrainableWeights.forEach((w, i) => w.write(saved[i]!));
    tf.dispose(saved);
  }
}

/** Peak bytes of predicting `m` random images. */
function probePredict(model: LayersModel, inputShape: number[], m: number, memory: BackendMemory): number {
  return memory.peakDuring(() =>
    tf.tidy(() => {
      (model.predict(tf.randomNormal([m, ...inputShape]), { batchSize: m }) as tf.Tensor).dataSync();
    }),
  );
}

/** Fixed and per-image bytes from the peaks at m1 and m2 images. */
function linear(m1: number, p1: number, m2: number, p2: number): { fixed: number; perImage: number; need: (m: number) => number } {
  const perImage = Math.max((p2 - p1) / (m2 - m1), 1);
  const fixed = Math.max(p1 - perImage * m1, 0);
  return { fixed, perImage, need: (m) => fixed + perImage * m };
}

/** Activation elements of one image summed over the layers' outputs: a cheap upper-bound screen. */
function activationElements(model: LayersModel): number {
  let total = 0;
  for (const layer of model.layers) {
    const shapes = (Array.isArray(layer.outputShape[0]) ? layer.outputShape : [layer.outputShape]) as (number | null)[][];
    for (const s of shapes) total += s.slice(1).reduce<number>((a, d) => a * (d ?? 1), 1);
  }
  return total;
}

/**
 * How many micro-batches each batch is computed as, and the validation batch that fits; logs each choice
 * once when it is not the configured one.
 */
export function planMicroBatches(p: MemoryPlanInput): MemoryPlan {
  const bnNote = 'batch norm normalizes each micro-batch';
  const where = `${p.modelName} at ${p.inputShape.slice(0, 2).join('x')} px`;
  let evalBatchSize = p.evalBatchSize;
  // the optimizer's state is allocated at the first step: keep room for two copies of the weights (Adam's)
  const weightBytes = 4 * p.model.trainableWeights.reduce((a, w) => a + w.shape.reduce<number>((x, d) => x * (d ?? 1), 1), 0);
  const free = p.memory?.available();
  const budget = free === undefined ? undefined : Math.max(0, free - 2 * weightBytes);
  // Well under the budget by a generous bound (16 bytes per activation element and image): nothing to measure.
  const screen = (batch: number) => budget !== undefined && 16 * activationElements(p.model) * batch >= budget / 2;
  if (p.memory && budget !== undefined && screen(evalBatchSize)) {
    // inference frees as it goes, so small batches are dominated by fixed costs: measure at 2 and 8
    const two = probePredict(p.model, p.inputShape, 2, p.memory);
    const eight = two * 4 < budget ? probePredict(p.model, p.inputShape, 8, p.memory) : 4 * two;
    const { fixed, perImage, need } = linear(2, two, 8, eight);
    if (need(evalBatchSize) > budget) {
      evalBatchSize = Math.max(1, Math.floor((budget - fixed) / perImage));
      p.logger.info(
        `memory: validating ${where} in batches of ${evalBatchSize} (a batch of ${p.evalBatchSize} needs about ${MB(need(p.evalBatchSize))})`,
      );
    }
  }
  // the user's gradAccum is theirs (core logs it)
  if (p.gradAccum !== undefined) return { microBatches: Math.min(p.gradAccum, p.batchSize), evalBatchSize };
  if (!p.memory || budget === undefined || !screen(p.batchSize)) return { microBatches: 1, budgetBytes: budget, evalBatchSize };
  const one = probeStep(p.model, p.inputShape, p.numClasses, 1, p.memory);
  if (one >= budget) throw outOfMemory(where, p.batchSize, `a step of 1 image needs about ${MB(one)}, the backend has ${MB(budget)} free`);
  const four = one * 4 < budget ? probeStep(p.model, p.inputShape, p.numClasses, 4, p.memory) : 4 * one;
  const { fixed, perImage, need } = linear(1, one, 4, four);
  if (need(p.batchSize) <= budget) return { microBatches: 1, stepBytes: need(p.batchSize), budgetBytes: budget, evalBatchSize };
  const fits = Math.max(1, Math.floor((budget - fixed) / perImage));
  const n = Math.ceil(p.batchSize / fits);
  const size = Math.ceil(p.batchSize / n);
  p.logger.info(
    `memory: a step of ${where}, batch ${p.batchSize}, needs about ${MB(need(p.batchSize))} (${MB(perImage)} per image), ` +
      `more than the ${MB(budget)} the backend has: each batch is computed as ${n} micro-batches of ${size} or less and their gradients accumulated ` +
      `(--grad-accum ${n} sets it; ${bnNote})`,
  );
  return { microBatches: n, stepBytes: need(size), budgetBytes: budget, evalBatchSize };
}
