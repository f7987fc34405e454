import { AsyncSeriesHook, AsyncSeriesWaterfallHook, SyncHook, SyncWaterfallHook } from 'tapable';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import type {
  Artifact,
  Batch,
  BlockInfo,
  DecodeInfo,
  DecodePlan,
  EpochMetrics,
  Hooks,
  LossState,
  NeckInfo,
  PartialEpoch,
  PluginHooks,
  RunEnd,
  RunResult,
  StepStats,
  TapOnly,
  TapOptions,
  TrainContext,
} from '../contract.js';

export type {
  Batch,
  BatchMeta,
  LossState,
  BlockInfo,
  NeckInfo,
  DecodePlan,
  DecodeInfo,
  EpochMetrics,
  Artifact,
  StepStats,
  PartialEpoch,
  RunEnd,
  RunResult,
  Hooks,
  BuildHooks,
  PluginHooks,
  TapOnly,
  TapOptions,
} from '../contract.js';

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
    /** The epoch's DecodePlan: crop while decoding, fold normalize into the uint8 conversion (augment). */
    decode: new SyncWaterfallHook<[DecodePlan, DecodeInfo]>(['plan', 'info']),
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

interface RawTap {
  name: string;
  stage?: number;
  before?: string | string[];
  fn: unknown;
  type: string;
  [key: string]: unknown;
}
interface RawHook {
  taps: RawTap[];
  _insert(tap: RawTap): void;
  [method: string]: unknown;
}
type TapArg = string | (TapOptions & { name: string; [key: string]: unknown });
/** Where a tap keeps the names it asked to run before (tapable's own `before` only holds the ones tapped already). */
const WANTS_BEFORE = 'tricksBefore';

/**
 * A tap-only facade of one hook (tap, tapAsync, tapPromise, withOptions). `before` is made independent of
 * the registration order: tapable moves a tap whose `before` names no tap yet to the front of every stage,
 * so the facade passes only the names tapped already, and when a named tap comes later and lands before the
 * tap that asked to precede it, moves that tap in front of it.
 */
function facade<H>(hook: H, defaults: TapOptions = {}): TapOnly<H> {
  const raw = hook as unknown as RawHook;
  const tapWith = (method: string) => (options: TapArg, fn: unknown) => {
    const o = { ...defaults, ...(typeof options === 'string' ? { name: options } : options) } as RawTap;
    const wanted = o.before === undefined ? [] : ([] as string[]).concat(o.before);
    if (wanted.length) {
      const present = new Set(raw.taps.map((t) => t.name));
      const known = wanted.filter((n) => present.has(n));
      o[WANTS_BEFORE] = wanted;
      if (known.length) o.before = known;
      else delete o.before;
    }
    (raw[method] as (o: RawTap, fn: unknown) => void).call(hook, o, fn);
    // earlier taps that asked to run before this one, but sit after it: insert them again, before it
    for (;;) {
      const at = raw.taps.findIndex((t) => t.name === o.name);
      const late = raw.taps.findIndex((t, i) => i > at && (t[WANTS_BEFORE] as string[] | undefined)?.includes(o.name));
      if (at < 0 || late < 0) break;
      const [t] = raw.taps.splice(late, 1);
      const present = new Set(raw.taps.map((x) => x.name));
      raw._insert({ ...t, before: (t[WANTS_BEFORE] as string[]).filter((n) => present.has(n)) });
    }
  };
  return {
    tap: tapWith('tap'),
    tapAsync: tapWith('tapAsync'),
    tapPromise: tapWith('tapPromise'),
    withOptions: (options: TapOptions) => facade(hook, { ...defaults, ...options }),
  } as unknown as TapOnly<H>;
}

/**
 * The hooks as plugins get them: a frozen set of tap-only facades (no call/promise: only the trainer calls
 * hooks). Taps registered through a facade are the real hooks' taps, so interceptors see them.
 */
export function tapOnly(hooks: Hooks): PluginHooks {
  const out: Record<string, unknown> = {};
  for (const [name, hook] of Object.entries(hooks)) out[name] = facade(hook);
  return Object.freeze(out) as PluginHooks;
}
