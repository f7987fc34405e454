import { AsyncSeriesHook, AsyncSeriesWaterfallHook, SyncHook, SyncWaterfallHook } from 'tapable';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import type { Artifact, Batch, BlockInfo, EpochMetrics, Hooks, LossState, NeckInfo, PartialEpoch, RunEnd, RunResult, StepStats, TrainContext } from '../contract.js';

export type { Batch, BatchMeta, LossState, BlockInfo, NeckInfo, EpochMetrics, Artifact, StepStats, PartialEpoch, RunEnd, RunResult, Hooks, BuildHooks } from '../contract.js';

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

/** Declared once, frozen: plugins tap these, the trainer calls them. */
export function createHooks(): Hooks {
  return Object.freeze({
    /** Before training: load teachers, compute data statistics. */
    setup: new AsyncSeriesHook<[TrainContext]>(['ctx']),
    /** The built model: wrap or rewrite it (qat, prune). */
    model: new SyncWaterfallHook<[LayersModel, TrainContext]>(['model', 'ctx']),
    /** One block's residual branch while the backbone is built (se-block). */
    block: new SyncWaterfallHook<[SymbolicTensor, BlockInfo]>(['branch', 'info']),
    /** The pooled features before the classifier, with the stage outputs (fpn). */
    neck: new SyncWaterfallHook<[SymbolicTensor, NeckInfo]>(['features', 'info']),
    /** The start of an epoch's training steps (progress output). */
    epochStart: new SyncHook<[TrainContext]>(['ctx']),
    /** A training batch (augment, mixup, cutmix). */
    batch: new SyncWaterfallHook<[Batch, TrainContext]>(['batch', 'ctx']),
    /** An evaluation batch (normalize, resize: the deterministic part of the pipeline). */
    evalBatch: new SyncWaterfallHook<[Batch, TrainContext]>(['batch', 'ctx']),
    /** Loss terms (label smoothing, focal, kd, l1). */
    loss: new SyncWaterfallHook<[LossState, TrainContext]>(['loss', 'ctx']),
    /** After the optimizer update (masks, observers, ema). */
    step: new SyncHook<[TrainContext]>(['ctx']),
    /** After each step, outside the step's tidy: the epoch's running loss and speed (progress output). */
    stepEnd: new SyncHook<[TrainContext, StepStats]>(['ctx', 'stats']),
    /** A signal (SIGTERM, SIGINT) stopped the run mid-epoch: save what resumes it (the checkpoint). */
    interrupt: new AsyncSeriesHook<[TrainContext, PartialEpoch]>(['ctx', 'partial']),
    /** End of an epoch, after evaluation; ctx.metrics already ends with this epoch's (schedules, checkpoints, prune schedule). */
    epoch: new AsyncSeriesHook<[TrainContext, EpochMetrics]>(['ctx', 'metrics']),
    /** Export: artifact -> artifact (quantize, shrink). */
    export: new AsyncSeriesWaterfallHook<[Artifact, TrainContext]>(['artifact', 'ctx']),
    /** The run's result (success only). */
    done: new AsyncSeriesHook<[TrainContext, RunResult]>(['ctx', 'result']),
    /** Every exit, success or not (error, NaN stop, signal): restore what a plugin changed, free what it holds. */
    teardown: new AsyncSeriesHook<[TrainContext, RunEnd]>(['ctx', 'end']),
  });
}
