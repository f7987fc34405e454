import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  definePlugin,
  saveModel,
  STAGE_REPORT,
  monitoredMetric,
  writeDirAtomic,
  writeFileAtomic,
  type EpochMetrics,
  type JSONSchema,
  type PluginState,
  type TrainContext,
} from '@tricks/core';

export const PLUGIN_NAME = 'best-checkpoint';

/** OUT/model-best: the best model so far, with best.json. */
export const BEST_DIR = 'model-best';
/** OUT/top-k/epoch-NNN: the k best models (topK > 1). */
export const TOP_K_DIR = 'top-k';

export interface BestCheckpointOptions {
  /** The epoch metric to compare (any key of the epoch's metrics, plugins' extra metrics included). */
  monitor: string;
  /** 'max': higher is better (accuracy); 'min': lower is better (loss). */
  mode: 'max' | 'min';
  /** How many of the best models to keep: model-best always, and with topK > 1 also top-k/epoch-NNN. */
  topK: number;
  /** A new best must beat the old one by more than this. */
  minDelta: number;
}

export const schema: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    monitor: { type: 'string', minLength: 1, default: 'val_top1' },
    mode: { enum: ['max', 'min'], default: 'max' },
    topK: { type: 'integer', minimum: 1, default: 1 },
    minDelta: { type: 'number', minimum: 0, default: 0 },
  },
};

/** One saved model: its epoch (1-based) and the monitored value. */
export interface Entry {
  epoch: number;
  value: number;
}

/** What survives a checkpoint: the best, the kept top-k (best first) and every improvement. */
export interface BestState {
  best?: Entry;
  kept: Entry[];
  history: Entry[];
}

/** Is `a` better than `b` by more than `delta`, in `mode`? */
export const better = (a: number, b: number, mode: 'max' | 'min', delta = 0) => (mode === 'max' ? a > b + delta : a < b - delta);

export const epochDirName = (epoch: number) => `epoch-${String(epoch).padStart(3, '0')}`;

/**
 * Updates the state with an epoch's value: whether it is a new best (by more than minDelta), whether it
 * enters the top-k (better than the worst kept by more than minDelta, or fewer than k kept), and which entries drop out.
 * Pure: the plugin does the file work.
 */
export function update(
  state: BestState,
  entry: Entry,
  o: Pick<BestCheckpointOptions, 'mode' | 'topK' | 'minDelta'>,
): { state: BestState; improved: boolean; entered: boolean; dropped: Entry[] } {
  const improved = !state.best || better(entry.value, state.best.value, o.mode, o.minDelta);
  const worst = state.kept.at(-1);
  const entered = improved || state.kept.length < o.topK || (worst !== undefined && better(entry.value, worst.value, o.mode, o.minDelta));
  let kept = state.kept;
  let dropped: Entry[] = [];
  if (entered) {
    // by value, best first; a tie keeps the earlier epoch ahead (stable sort). A new best beats every kept
    // value (each is at most an earlier best + minDelta), so it is first; with topK 1, kept is [best].
    const all = [...state.kept, entry].sort((a, b) => (o.mode === 'max' ? b.value - a.value : a.value - b.value));
    kept = all.slice(0, o.topK);
    dropped = all.slice(o.topK);
  }
  return {
    state: {
      best: improved ? entry : state.best,
      kept,
      history: improved ? [...state.history, entry] : state.history,
    },
    improved,
    entered,
    dropped,
  };
}

/** The metadata the trainer's final export writes (so `tricks eval` re-applies the same eval transforms), plus ours. */
function metadataOf(ctx: TrainContext, entry: Entry, o: BestCheckpointOptions): Record<string, unknown> {
  const cfg = ctx.config;
  return {
    tricks: {
      classNames: ctx.train.classNames,
      inputShape: ctx.train.shape,
      numClasses: ctx.train.numClasses,
      model: cfg.model.name,
      plugins: cfg.plugins.map((p) => p.key),
      pluginOptions: cfg.plugins.map((p) => ({ name: p.name, options: p.options })),
    },
    bestCheckpoint: { epoch: entry.epoch, monitor: o.monitor, mode: o.mode, value: entry.value },
  };
}

export default definePlugin<BestCheckpointOptions>({
  name: PLUGIN_NAME,
  description: 'keeps OUT/model-best (and the top-k) by a monitored epoch metric, written atomically',
  schema,
  apply(api, options) {
    let state: BestState = { kept: [], history: [] };
    let ctxRef: TrainContext | undefined;

    const bestJson = (ctx: TrainContext, metrics?: EpochMetrics) => {
      const best = state.best!;
      return JSON.stringify(
        {
          epoch: best.epoch,
          monitor: options.monitor,
          mode: options.mode,
          value: best.value,
          minDelta: options.minDelta,
          topK: options.topK,
          metrics: metrics ?? ctx.metrics.find((m) => m.epoch === best.epoch),
          kept: state.kept.map((e) => ({ ...e, dir: options.topK > 1 ? join(TOP_K_DIR, epochDirName(e.epoch)) : BEST_DIR })),
          history: state.history,
        },
        null,
        1,
      );
    };

    /** Removes top-k/epoch-* directories that are not kept (dropped ones, or strays of a run resumed from an older checkpoint). */
    const prune = async (out: string) => {
      const root = join(out, TOP_K_DIR);
      if (!existsSync(root)) return;
      const keep = new Set(options.topK > 1 ? state.kept.map((e) => epochDirName(e.epoch)) : []);
      for (const name of await readdir(root)) {
        if (!/^\.?epoch-\d+/.test(name) || keep.has(name)) continue;
        await rm(join(root, name), { recursive: true, force: true });
      }
    };

    api.hooks.setup.tapPromise({ name: PLUGIN_NAME }, async (ctx) => {
      ctxRef = ctx;
    });

    // After every plugin's epoch tap (they may add the monitored metric), before the built-in sinks and checkpoint.
    api.hooks.epoch.tapPromise({ name: PLUGIN_NAME, stage: STAGE_REPORT - 1 }, async (ctx, metrics) => {
      const value = monitoredMetric(metrics, options.monitor, PLUGIN_NAME);
      if (!Number.isFinite(value)) {
        ctx.logger.warn(`${PLUGIN_NAME}: epoch ${metrics.epoch} ${options.monitor} is ${value}; not compared`);
        return;
      }
      const entry: Entry = { epoch: metrics.epoch, value };
      const previous = state.best;
      const r = update(state, entry, options);
      if (!r.entered) {
        ctx.logger.info(
          `${PLUGIN_NAME}: epoch ${entry.epoch} ${options.monitor} ${value.toFixed(4)}, best stays ${previous!.value.toFixed(4)} (epoch ${previous!.epoch})`,
        );
        return;
      }
      const meta = metadataOf(ctx, entry, options);
      if (options.topK > 1) {
        await writeDirAtomic(join(ctx.out, TOP_K_DIR, epochDirName(entry.epoch)), (tmp) => saveModel(ctx.model, tmp, meta));
      }
      state = r.state;
      if (r.improved) {
        // the model and its best.json are swapped in together: a crash leaves the previous complete model-best
        await writeDirAtomic(join(ctx.out, BEST_DIR), async (tmp) => {
          await saveModel(ctx.model, tmp, meta);
          await writeFileAtomic(join(tmp, 'best.json'), bestJson(ctx, metrics));
        });
        ctx.logger.info(
          `${PLUGIN_NAME}: epoch ${entry.epoch} ${options.monitor} ${value.toFixed(4)} is the best` +
            (previous ? ` (was ${previous.value.toFixed(4)} at epoch ${previous.epoch})` : '') +
            ` -> ${join(ctx.out, BEST_DIR)}`,
        );
      } else {
        await writeFileAtomic(join(ctx.out, BEST_DIR, 'best.json'), bestJson(ctx));
        ctx.logger.info(`${PLUGIN_NAME}: epoch ${entry.epoch} ${options.monitor} ${value.toFixed(4)} enters the top ${options.topK}`);
      }
      if (options.topK > 1) await prune(ctx.out);
    });

    const pluginState: PluginState = {
      save: () => ({ json: state }),
      load: async (s) => {
        const json = s.json as BestState | undefined;
        if (!json || !Array.isArray(json.kept)) throw new Error(`${PLUGIN_NAME}: the checkpoint has no ${PLUGIN_NAME} state`);
        state = { best: json.best, kept: json.kept, history: json.history ?? [] };
        if (ctxRef && options.topK > 1) await prune(ctxRef.out);
      },
    };
    return { state: pluginState };
  },
});
