import { AsyncSeriesHook, AsyncSeriesWaterfallHook, SyncHook, SyncWaterfallHook } from 'tapable';
import type * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import type { TrainContext } from '../trainer/context.js';

/**
 * Stage constants order taps on one hook, whatever the order plugins were registered in.
 * Pass them as `{ name: PLUGIN_NAME, stage: STAGE_MIX }` to tap().
 */
export const STAGE_DATA = -200;
export const STAGE_AUGMENT = -100;
export const STAGE_MIX = 0;
export const STAGE_LOSS = 100;
export const STAGE_REGULARIZE = 200;
export const STAGE_COMPRESS = 300;
export const STAGE_REPORT = 400;

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
  /** Per-sample loss weights, set by taps such as class-balance or noise-filter. */
  sampleWeights?: tf.Tensor1D;
  [key: string]: unknown;
}

/** What the loss hook passes along: taps read logits and targets and rewrite named loss terms. */
export interface LossState {
  logits: tf.Tensor2D;
  batch: Batch;
  /** Targets the loss terms use; starts as batch.y. */
  targets: tf.Tensor2D;
  /** Named scalar terms; the trainer minimizes their sum. Starts with `ce` (softmax cross-entropy). */
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

export interface RunResult {
  out: string;
  epochs: EpochMetrics[];
  best: EpochMetrics | undefined;
  stopped?: string;
  artifacts: Artifact[];
}

/** Declared once, frozen: plugins tap these, the trainer calls them. */
export function createHooks() {
  return Object.freeze({
    /** Before training: load teachers, compute data statistics. */
    setup: new AsyncSeriesHook<[TrainContext]>(['ctx']),
    /** The built model: wrap or rewrite it (qat, prune). */
    model: new SyncWaterfallHook<[LayersModel, TrainContext]>(['model', 'ctx']),
    /** One block's residual branch while the backbone is built (se-block). */
    block: new SyncWaterfallHook<[SymbolicTensor, BlockInfo]>(['branch', 'info']),
    /** The pooled features before the classifier, with the stage outputs (fpn). */
    neck: new SyncWaterfallHook<[SymbolicTensor, NeckInfo]>(['features', 'info']),
    /** A training batch (augment, mixup, cutmix). */
    batch: new SyncWaterfallHook<[Batch, TrainContext]>(['batch', 'ctx']),
    /** An evaluation batch (normalize, resize: the deterministic part of the pipeline). */
    evalBatch: new SyncWaterfallHook<[Batch, TrainContext]>(['batch', 'ctx']),
    /** Loss terms (label smoothing, focal, kd, l1). */
    loss: new SyncWaterfallHook<[LossState, TrainContext]>(['loss', 'ctx']),
    /** After the optimizer update (masks, observers, ema). */
    step: new SyncHook<[TrainContext]>(['ctx']),
    /** End of an epoch, after evaluation (schedules, checkpoints, prune schedule). */
    epoch: new AsyncSeriesHook<[TrainContext, EpochMetrics]>(['ctx', 'metrics']),
    /** Export: artifact -> artifact (quantize, shrink). */
    export: new AsyncSeriesWaterfallHook<[Artifact, TrainContext]>(['artifact', 'ctx']),
    /** The run's result. */
    done: new AsyncSeriesHook<[TrainContext, RunResult]>(['ctx', 'result']),
  });
}

export type Hooks = ReturnType<typeof createHooks>;

/** The hooks a model builder uses: block and neck. */
export type BuildHooks = Pick<Hooks, 'block' | 'neck'>;
