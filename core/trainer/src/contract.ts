// The plugin contract's types, in one leaf module: what hooks carry, what taps see, what the hooks are.
// It imports no other module of the trainer that could import it back (data, optimizer, config, logger,
// rng are leaves), so the contract has no import circle, not even a type-only one.
import type { AsyncSeriesHook, AsyncSeriesWaterfallHook, SyncHook, SyncWaterfallHook } from 'tapable';
import type * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import type { Dataset, DecodeCrop } from './data/dataset.js';
import type { TricksOptimizer } from './optim/optimizer.js';
import type { ResolvedConfig } from './plugin/config.js';
import type { Logger } from './io/logger.js';
import type { Rng } from './util/rng.js';

/** One training or evaluation batch. x: float32 NHWC in [0, 1] unless a tap normalized it; y: one-hot or soft targets. */
export interface Batch {
  x: tf.Tensor4D;
  y: tf.Tensor2D;
  meta: BatchMeta;
}

export interface BatchMeta {
  /** Dataset indices of the rows. */
  indices: Int32Array;
  /** Integer labels of the rows, before any mixing. */
  labels: Int32Array;
  epoch: number;
  step: number;
  /** Per-sample loss weights set by a batch tap; the loss hook starts its LossState.sampleWeights from them. */
  sampleWeights?: tf.Tensor1D;
  /** What the epoch's DecodePlan already did to x, by the name of the plugin that asked: its taps skip that part. */
  decoded?: { cropped?: string; pixels?: string };
  [key: string]: unknown;
}

/**
 * What plugins ask of the data path for an epoch's training batches (the decode hook), so work on full-size
 * float tensors in the training thread moves to the uint8 images while they are decoded and converted:
 * - `crop`: the dataset crops, resizes and flips each item from its source while it decodes (off the training
 *   thread; only datasets with Dataset.decodeCrop do, and a batch says so in meta.decoded.cropped). `draw` gets
 *   the source size and the item's own generator (itemRng of the run's seed, the epoch and the item's place in
 *   the epoch's order), so the draws are seeded and the same after a resume, whatever the prefetch;
 * - `pixels`: toBatch maps uint8 to float as x = u8 * scale[c] + offset[c] instead of u8 / 255 (a Normalize folded
 *   into the conversion; meta.decoded.pixels says so). Ask for it only when no tap before yours needs [0, 1].
 */
export interface DecodePlan {
  crop?: { owner: string; draw(srcHeight: number, srcWidth: number, rng: Rng): DecodeCrop };
  pixels?: { owner: string; scale: number[]; offset: number[] };
}

/** What decode taps see. */
export interface DecodeInfo {
  /** The training set of the epoch (Dataset.decodeCrop says whether it can crop while decoding). */
  dataset: Dataset;
  epoch: number;
  /** The batch hook's taps in the order they run, with their stages. */
  batchTaps: { name: string; stage: number }[];
  ctx: TrainContext;
}

/**
 * What the loss hook passes along. Taps rewrite the targets and the per-sample weights (label smoothing,
 * class-balance, noise-filter), scale or replace the base term (kd, focal-loss) and add terms of their own;
 * after the last tap the trainer computes the base term once, `terms.ce = ceScale * Loss(logits, targets,
 * sampleWeights)` with the injected Loss (TOKENS.Loss), and minimizes the sum of all terms (see lossTerms).
 */
export interface LossState {
  logits: tf.Tensor2D;
  batch: Batch;
  /** Targets of the base loss (and of terms computed from targets, e.g. focal); starts as batch.y. */
  targets: tf.Tensor2D;
  /** Per-sample weights of the base loss and of weighted terms; starts as batch.meta.sampleWeights. Taps multiply theirs in. */
  sampleWeights?: tf.Tensor1D;
  /** Factor on the base term (default 1): kd multiplies it by 1 - alpha; 0 leaves the base term out (focal-loss replaces it). */
  ceScale?: number;
  /** Terms of the taps (kd, focal, sparsity); `ce` is the trainer's, computed after the taps. */
  terms: Record<string, tf.Scalar>;
}

/** Describes one backbone block while the model is being built. */
export interface BlockInfo {
  /** The backbone's name, e.g. "resnet20". */
  model: string;
  /** 'basic' | 'bottleneck' | 'mbconv' | 'swin' | ... */
  kind: string;
  stage: number;
  index: number;
  inChannels: number;
  outChannels: number;
  /** A unique prefix for the names of layers a tap adds. */
  name: string;
}

export interface NeckInfo {
  model: string;
  /** The outputs of each stage, lowest resolution last. */
  stages: SymbolicTensor[];
  name: string;
}

export interface EpochMetrics {
  epoch: number;
  train_loss: number;
  val_loss: number;
  val_top1: number;
  val_top5: number;
  lr: number;
  images_per_sec: number;
  seconds: number;
  [extra: string]: number;
}

/** An artifact that the export hook passes along, e.g. a saved model directory. */
export interface Artifact {
  /** Format name, e.g. "tfjs", "tfjs-uint8", "onnx". */
  format: string;
  /** Output directory of this artifact. */
  dir: string;
  model: LayersModel;
  files: string[];
  report: Record<string, unknown>;
  [key: string]: unknown;
}

/** What stepEnd taps see after each step: the epoch's running figures. */
export interface StepStats {
  /** Mean training loss of the epoch so far (NaN before the first counted batch). */
  loss: number;
  /** Images trained on in this epoch so far. */
  seen: number;
  /** Training images per second in this epoch so far. */
  imagesPerSec: number;
}

/** The running sums of an epoch that a signal interrupted, saved with the checkpoint. */
export interface PartialEpoch {
  lossSum: number;
  seen: number;
  seconds: number;
}

/** How a run ended, for teardown taps: they run on every exit. */
export interface RunEnd {
  /** The error that ended the run (a NaN stop, a signal, anything thrown), if it did not finish. */
  error?: unknown;
  result?: RunResult;
}

export interface RunResult {
  out: string;
  epochs: EpochMetrics[];
  best: EpochMetrics | undefined;
  stopped?: string;
  artifacts: Artifact[];
}

/** The trainer's hooks, declared once and frozen: plugins tap them, the trainer calls them. */
export interface Hooks {
  /** Before training: load teachers, compute data statistics. */
  readonly setup: AsyncSeriesHook<[TrainContext]>;
  /** The built model: wrap or rewrite it (qat, prune). */
  readonly model: SyncWaterfallHook<[LayersModel, TrainContext]>;
  /** One block's residual branch while the backbone is built (se-block). */
  readonly block: SyncWaterfallHook<[SymbolicTensor, BlockInfo]>;
  /** The pooled features before the classifier, with the stage outputs (fpn). */
  readonly neck: SyncWaterfallHook<[SymbolicTensor, NeckInfo]>;
  /** The start of an epoch's training steps (progress output). */
  readonly epochStart: SyncHook<[TrainContext]>;
  /** The epoch's DecodePlan, once per epoch before its first batch loads: crop while decoding, fold normalize (augment). */
  readonly decode: SyncWaterfallHook<[DecodePlan, DecodeInfo]>;
  /** A training batch (augment, mixup, cutmix). */
  readonly batch: SyncWaterfallHook<[Batch, TrainContext]>;
  /** An evaluation batch (normalize, resize: the deterministic part of the pipeline). */
  readonly evalBatch: SyncWaterfallHook<[Batch, TrainContext]>;
  /** Loss terms (label smoothing, focal, kd, l1). */
  readonly loss: SyncWaterfallHook<[LossState, TrainContext]>;
  /** After the optimizer update (masks, observers, ema). */
  readonly step: SyncHook<[TrainContext]>;
  /** After each step, outside the step's tidy: the epoch's running loss and speed (progress output). */
  readonly stepEnd: SyncHook<[TrainContext, StepStats]>;
  /** A signal (SIGTERM, SIGINT) stopped the run mid-epoch: save what resumes it (the checkpoint). */
  readonly interrupt: AsyncSeriesHook<[TrainContext, PartialEpoch]>;
  /** End of an epoch, after evaluation; ctx.metrics already ends with this epoch's (schedules, checkpoints, prune schedule). */
  readonly epoch: AsyncSeriesHook<[TrainContext, EpochMetrics]>;
  /** Export: artifact -> artifact (quantize, shrink). */
  readonly export: AsyncSeriesWaterfallHook<[Artifact, TrainContext]>;
  /** The run's result (success only). */
  readonly done: AsyncSeriesHook<[TrainContext, RunResult]>;
  /** Every exit, success or not (error, NaN stop, signal): restore what a plugin changed, free what it holds. */
  readonly teardown: AsyncSeriesHook<[TrainContext, RunEnd]>;
}

/** Tap options: `stage` orders phases; `before` names a tap (another plugin) this one runs before, whatever the registration order. */
export interface TapOptions {
  stage?: number;
  before?: string;
}

/** A hook as plugins see it: tap only (tap, tapAsync, tapPromise, withOptions); the trainer keeps call/promise. */
export type TapOnly<H> = Pick<H, Extract<keyof H, 'tap' | 'tapAsync' | 'tapPromise'>> & {
  /** A facade whose taps get these options by default (tapable's withOptions). */
  withOptions(options: TapOptions): TapOnly<H>;
};

/** The hooks as plugins get them (api.hooks, ctx.hooks): tap-only facades over the trainer's hooks. */
export type PluginHooks = { readonly [K in keyof Hooks]: TapOnly<Hooks[K]> };

/** The hooks a model builder uses: block and neck. */
export type BuildHooks = Pick<Hooks, 'block' | 'neck'>;

/** What taps see: where the run is and what it trains. */
export interface TrainContext {
  readonly config: ResolvedConfig;
  /** Tap-only facades of the trainer's hooks. */
  readonly hooks: PluginHooks;
  /** Zero-based epoch. */
  epoch: number;
  /** Global optimizer step (zero-based; counts steps already taken). */
  step: number;
  /** Step within the epoch. */
  stepInEpoch: number;
  stepsPerEpoch: number;
  totalSteps: number;
  /** Learning rate of the current step. */
  lr: number;
  /** The base learning rate the schedule scales every step (writable: lr-scaling sets it in setup). */
  baseLr: number;
  model: LayersModel;
  optimizer: TricksOptimizer;
  /** Seeded generator for tricks (mixup's lambda, augmentation parameters); saved in checkpoints. */
  rng: Rng;
  numClasses: number;
  inputShape: [number, number, number];
  train: Dataset;
  val: Dataset;
  /** Metrics of the finished epochs. */
  metrics: EpochMetrics[];
  logger: Logger;
  backend: string;
  out: string;
  /** Runs the evalBatch pipeline (normalize, resize: the deterministic transforms) on a batch. */
  evalTransform(batch: Batch): Batch;
  /** Evaluate a model (default: the training model) on the validation set. */
  evaluate(model?: LayersModel): Promise<EvalResult>;
  /** Loss terms of the last step, as numbers (for logging). */
  lastTerms: Record<string, number>;
  /**
   * Micro-batches each batch is computed as (gradAccum, else 1; a setup tap may raise it: @tricks/backend-wasm's
   * memory plan does). With more
   * than one, the batch hook sees the whole batch, the loss hook each micro-batch (its per-sample meta sliced
   * to it), and the step hook the one optimizer step.
   */
  microBatches: number;
  /** The validation batch (config.evalBatchSize, or less when a setup tap finds it does not fit the backend's memory). */
  evalBatchSize: number;
  /** The last epoch's evaluation (its confusion matrix goes into report.html). */
  lastEval?: EvalResult;
  /** True when the run continues from a checkpoint. */
  resumed: boolean;
  /** The run may replace a previous run in `out` (RunOptions.overwrite, `tricks train --overwrite`). */
  overwrite: boolean;
}

export interface EvalResult {
  loss: number;
  top1: number;
  top5: number;
  /** confusion[true][predicted] */
  confusion: number[][];
  count: number;
}

/** State a plugin keeps across a checkpoint (EMA weights, observers, masks). */
export interface PluginState {
  save(): Promise<{ json?: unknown; tensors?: Record<string, tf.Tensor> }> | { json?: unknown; tensors?: Record<string, tf.Tensor> };
  load(state: { json?: unknown; tensors?: Record<string, tf.Tensor> }): Promise<void> | void;
}

/** The gradient service (TOKENS.Gradients): the scalar f() and the gradients of the trainable variables by name. */
export type GradientFunction = (f: () => tf.Scalar, vars: tf.Variable[]) => { value: tf.Scalar; grads: tf.NamedTensorMap };

/** The training forward service (TOKENS.Forward): the logits of a training step. */
export type TrainingForward = (model: LayersModel, x: tf.Tensor) => tf.Tensor;

/** The evaluation forward service (TOKENS.Inference): the logits (or log-probabilities) that evaluation scores; may be async (ONNX Runtime). */
export type InferenceForward = (model: LayersModel, x: tf.Tensor4D) => tf.Tensor2D | Promise<tf.Tensor2D>;
