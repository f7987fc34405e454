import type * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Dataset } from '../data/dataset.js';
import type { EpochMetrics, Hooks } from '../hooks/hooks.js';
import type { TricksOptimizer } from '../optim/optimizer.js';
import type { ResolvedConfig } from '../plugin/config.js';
import type { Logger } from '../io/logger.js';
import type { Rng } from '../util/rng.js';

/** What taps see: where the run is and what it trains. */
export interface TrainContext {
  readonly config: ResolvedConfig;
  readonly hooks: Hooks;
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
  /** Evaluate a model (default: the training model) on the validation set. */
  evaluate(model?: LayersModel): Promise<EvalResult>;
  /** Loss terms of the last step, as numbers (for logging). */
  lastTerms: Record<string, number>;
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
