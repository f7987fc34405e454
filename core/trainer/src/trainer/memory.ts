// Micro-batches: each batch computed as several smaller ones whose gradients are summed before the one
// optimizer step (timm's --grad-accum-steps, Lightning's accumulate_grad_batches, with the batch size kept as
// the effective batch), either on request (gradAccum) or because a step of the whole batch would not fit in
// the backend's memory (the wasm heap is 32-bit: 4 GB at most). The plan measures rather than guesses: two
// probe steps of 1 and 2 images on the real model, their peak allocation read from the backend.
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Batch } from '../contract.js';
import type { BackendMemory } from '../backends/select.js';
import { TricksError } from '../hooks/errors.js';
import type { Logger } from '../io/logger.js';
import { variableGradsFrugal } from '../optim/gradients.js';
import { applyTraining } from './forward.js';

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
  if (p.gradAccum !== undefined && p.gradAccum > 1) {
    const n = Math.min(p.gradAccum, p.batchSize);
    const size = Math.ceil(p.batchSize / n);
    p.logger.info(
      `gradient accumulation: each batch of ${p.batchSize} as ${n} micro-batches of ${size} or less (--grad-accum ${p.gradAccum}); ${bnNote}`,
    );
    return { microBatches: n, evalBatchSize };
  }
  if (p.gradAccum === 1 || !p.memory || budget === undefined || !screen(p.batchSize))
    return { microBatches: 1, budgetBytes: budget, evalBatchSize };
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

/** The error for a step that ran out of memory, naming the run's model, input size and batch. */
export function outOfMemory(where: string, batchSize: number, detail: string, microBatches = 1): TricksError {
  const micro = microBatches > 1 ? ` in ${microBatches} micro-batches` : '';
  return new TricksError(
    `out of memory: a training step of ${where} with batch ${batchSize}${micro} does not fit (${detail})`,
    `use a smaller --batch-size, or --grad-accum N to compute each batch as N micro-batches; the last checkpoint was not touched`,
  );
}

/** Whether an error is a backend running out of memory: wasm's abort or out-of-bounds access, or a failed allocation. */
export function isOutOfMemory(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const m = `${e.name}: ${e.message}`;
  return (
    /RuntimeError: (Aborted|memory access out of bounds)/.test(m) ||
    /Array buffer allocation failed|Invalid typed array length|out of memory|Cannot allocate Wasm memory|WebAssembly\.Memory\(\): could not allocate/i.test(
      m,
    )
  );
}
