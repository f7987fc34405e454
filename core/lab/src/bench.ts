import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
// Training and inference throughput of a LayersModel on the current backend, with the step of the
// PyTorch reference (/work/shared/bench/torch_resnet18_cifar.py): SGD lr 0.1, momentum 0.9,
// weight decay 5e-4 on every weight, softmax cross-entropy with label smoothing 0.1, loss read
// back each step. The optimizer is the trainer's SGD (one native pass per weight on wasm).
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { applyTraining, DataParallel, variableGradsFrugal, type ModelRef } from '@tricks/backend-wasm';
import { microBatchRanges, SGD } from '@tricks/core';

export interface BenchOptions {
  model: LayersModel;
  batchSize: number;
  /** Timed steps (default 5, as the PyTorch script). */
  steps?: number;
  /** Untimed steps first (default 2). */
  warmup?: number;
  /** Measure training (default true); when false trainImagesPerSec is NaN. */
  train?: boolean;
  /** Called after each timed training step with its milliseconds. */
  onStep?: (ms: number) => void;
  /** Compute each training step as this many micro-batches with accumulated gradients (default 1), as the trainer does. */
  microBatches?: number;
  /** Inference batch (default: batchSize). */
  inferBatchSize?: number;
}

export interface BenchResult {
  trainImagesPerSec: number;
  inferImagesPerSec: number;
}

const LR = 0.1,
  MOMENTUM = 0.9,
  WEIGHT_DECAY = 5e-4,
  LABEL_SMOOTHING = 0.1;

export async function benchTrain(opts: BenchOptions): Promise<BenchResult> {
  const { model, batchSize } = opts;
  const steps = opts.steps ?? 5,
    warmup = opts.warmup ?? 2;
  const [h, w, c] = model.inputs[0]!.shape.slice(1) as number[];
  const classes = model.outputs[0]!.shape[1] as number;
  const x = tf.randomNormal([batchSize, h!, w!, c!]);
  const labels = tf.oneHot(tf.randomUniform([batchSize], 0, classes, 'int32') as tf.Tensor1D, classes);
  const optimizer = new SGD({ lr: LR, momentum: MOMENTUM, weightDecay: WEIGHT_DECAY });
  const weights = model.trainableWeights.map((v) => v.read() as tf.Variable);

  const ranges = microBatchRanges(batchSize, opts.microBatches ?? 1);
  const trainStep = (): number => {
    let loss = 0;
    let acc: tf.NamedTensorMap | undefined;
    for (const [start, end] of ranges) {
      const next = tf.tidy(() => {
        const [px, py] = ranges.length === 1 ? [x, labels] : [tf.slice(x, start, end - start), tf.slice(labels, start, end - start)];
        const { value, grads } = variableGradsFrugal(() => {
          const logits = applyTraining(model, px);
          const l = tf.losses.softmaxCrossEntropy(py, logits, undefined, LABEL_SMOOTHING) as tf.Scalar;
          return ranges.length === 1 ? l : (tf.mul(l, (end - start) / batchSize) as tf.Scalar);
        }, weights);
        loss += value.dataSync()[0]!; // read back each step, as the PyTorch reference
        if (!acc) return grads;
        return Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, tf.add(acc![k]!, g)]));
      });
      if (acc) tf.dispose(Object.values(acc));
      acc = next;
    }
    tf.tidy(() => optimizer.applyGradients(acc!));
    tf.dispose(Object.values(acc!));
    return loss;
  };
  const inferBatch = opts.inferBatchSize ?? batchSize;
  const inferStep = (): void => {
    const y = model.predict(x, { batchSize: inferBatch }) as tf.Tensor; // the whole batch at once, as the PyTorch reference (predict defaults to 32)
    y.dataSync();
    y.dispose();
  };

  try {
    const train = opts.train === false ? NaN : time(trainStep, warmup, steps, opts.onStep);
    const infer = time(inferStep, warmup, steps);
    return { trainImagesPerSec: batchSize / train, inferImagesPerSec: batchSize / infer };
  } finally {
    tf.dispose([x, labels]);
    optimizer.dispose();
  }
}

/** Mean seconds per call over `steps` calls after `warmup` untimed ones. */
function time(f: () => unknown, warmup: number, steps: number, onStep?: (ms: number) => void): number {
  for (let i = 0; i < warmup; i++) f();
  let total = 0;
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    f();
    const ms = performance.now() - t;
    onStep?.(ms);
    total += ms;
  }
  return total / steps / 1000;
}

export interface DataParallelBenchOptions {
  /** Module and export that build the model in each worker. */
  model: ModelRef;
  workers: number;
  batchSize: number;
  steps?: number;
  warmup?: number;
  backend?: string;
  /** Input [height, width, channels] (default [32, 32, 3]). */
  inputShape?: [number, number, number];
  onStep?: (ms: number) => void;
}

/** benchTrain's measurement with the step split over `workers` DataParallel replicas. */
export async function benchDataParallel(opts: DataParallelBenchOptions): Promise<BenchResult> {
  const steps = opts.steps ?? 5,
    warmup = opts.warmup ?? 2,
    B = opts.batchSize;
  const dp = await DataParallel.create({
    model: opts.model,
    workers: opts.workers,
    backend: opts.backend,
    optimizer: { lr: LR, momentum: MOMENTUM, weightDecay: WEIGHT_DECAY },
    labelSmoothing: LABEL_SMOOTHING,
  });
  try {
    const [h, w, c] = opts.inputShape ?? [32, 32, 3];
    const xShape = [B, h!, w!, c!];
    const x = Float32Array.from({ length: B * h! * w! * c! }, () => Math.random() * 2 - 1);
    const classes = (await dp.predict(x.slice(0, opts.workers * h! * w! * c!), [opts.workers, h!, w!, c!])).shape[1]!;
    const y = new Float32Array(B * classes);
    for (let i = 0; i < B; i++) y[i * classes + Math.floor(Math.random() * classes)] = 1;
    const train = await timeAsync(() => dp.step({ x, xShape, y, yShape: [B, classes] }), warmup, steps, opts.onStep);
    const infer = await timeAsync(() => dp.predict(x, xShape), warmup, steps);
    return { trainImagesPerSec: B / train, inferImagesPerSec: B / infer };
  } finally {
    await dp.dispose();
  }
}

async function timeAsync(f: () => Promise<unknown>, warmup: number, steps: number, onStep?: (ms: number) => void): Promise<number> {
  for (let i = 0; i < warmup; i++) await f();
  let total = 0;
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    await f();
    const ms = performance.now() - t;
    onStep?.(ms);
    total += ms;
  }
  return total / steps / 1000;
}

/** What `torchPeer` measured: PyTorch's images/s for the same architecture, or why it could not. */
export interface PeerResult {
  peer?: string;
  model?: string;
  threads?: number;
  trainImagesPerSec?: number;
  inferImagesPerSec?: number;
  error?: string;
}

/**
 * The same architecture trained and run in PyTorch on this machine (py/torch_peer.py with TORCH_PYTHON, default
 * /usr/bin/python3): the torchvision twin of a zoo model on random data, timed like benchTrain. Only ratios measured
 * in the same run mean anything.
 */
export function torchPeer(
  name: string,
  o: { batchSize: number; input: number; classes: number; threads: number; steps: number; warmup: number },
): PeerResult {
  const python = process.env.TORCH_PYTHON ?? '/usr/bin/python3';
  const script = fileURLToPath(new URL('../../py/torch_peer.py', import.meta.url));
  const args = [script, name, o.batchSize, o.input, o.classes, o.threads, o.steps, o.warmup].map(String);
  const r = spawnSync(python, args, { encoding: 'utf8' });
  const line = (r.stdout ?? '').trim().split('\n').at(-1);
  if (r.error || !line)
    return { error: `${python} did not run the PyTorch peer (${r.error?.message ?? r.stderr.trim().split('\n').at(-1)})` };
  try {
    return JSON.parse(line) as PeerResult;
  } catch {
    return { error: `the PyTorch peer printed ${line.slice(0, 200)}` };
  }
}
