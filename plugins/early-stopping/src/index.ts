import * as tf from '@tensorflow/tfjs-core';
import {
  definePlugin,
  StopTraining,
  STAGE_REPORT,
  monitoredMetric,
  type EpochMetrics,
  type JSONSchema,
  type PluginState,
  type TrainContext,
} from '@tricks/core';

export const PLUGIN_NAME = 'early-stopping';

export interface EarlyStoppingOptions {
  /** The epoch metric to watch (a key of the epoch's metrics, e.g. val_loss, val_top1, ema_val_loss). */
  monitor: string;
  /** min: lower is better; max: higher is better; auto: min when the key contains "loss", max otherwise. */
  mode: 'auto' | 'min' | 'max';
  /** Epochs without an improvement after which training stops. */
  patience: number;
  /** An improvement is a change of more than minDelta in the right direction. */
  minDelta: number;
  /** When it stops, put the weights of the best epoch back into the model (so they are exported). */
  restoreBestWeights: boolean;
  /** The first startEpoch epochs are ignored (a warm-up): not a best, not counted. */
  startEpoch: number;
}

export const schema: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    monitor: { type: 'string', minLength: 1, default: 'val_loss' },
    mode: { enum: ['auto', 'min', 'max'], default: 'auto' },
    patience: { type: 'integer', minimum: 0, default: 5 },
    minDelta: { type: 'number', minimum: 0, default: 0 },
    restoreBestWeights: { type: 'boolean', default: true },
    startEpoch: { type: 'integer', minimum: 0, default: 0 },
  },
};

/** The direction of `mode` for `monitor`: auto is min for a key containing "loss", max otherwise. */
export function resolveMode(mode: EarlyStoppingOptions['mode'], monitor: string): 'min' | 'max' {
  if (mode !== 'auto') return mode;
  return monitor.includes('loss') ? 'min' : 'max';
}

/** Keras's test: current improves on best by more than minDelta in the direction of mode (NaN never does). */
export function isImprovement(current: number, best: number | undefined, mode: 'min' | 'max', minDelta: number): boolean {
  if (!Number.isFinite(current)) return false;
  if (best === undefined) return true;
  return mode === 'min' ? current < best - minDelta : current > best + minDelta;
}

/** What resumes with the run. */
export interface EarlyStoppingJson {
  best?: number;
  bestEpoch?: number;
  wait: number;
  weights: number;
}

const fmt = (v: number) => (Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(4) : v.toExponential(3));

export default definePlugin<EarlyStoppingOptions>({
  name: PLUGIN_NAME,
  description:
    'early stopping (Keras EarlyStopping): stop when a metric has not improved for `patience` epochs, restoring the best weights',
  schema,
  apply(api, options) {
    const mode = resolveMode(options.mode, options.monitor);
    let best: number | undefined;
    let bestEpoch: number | undefined; // 1-based, as EpochMetrics.epoch
    let wait = 0;
    let bestWeights: tf.Tensor[] = [];

    const drop = () => {
      tf.dispose(bestWeights);
      bestWeights = [];
    };
    const keepWeights = (ctx: TrainContext) => {
      drop();
      bestWeights = ctx.model.weights.map((w) => tf.keep(tf.clone(w.read())));
    };

    // After the plugins' own metrics (ema_val_loss...), before the built-in sinks and checkpoint at
    // STAGE_REPORT: weights restored here are the ones that checkpoint saves and the export writes.
    api.hooks.epoch.tapPromise({ name: PLUGIN_NAME, stage: STAGE_REPORT - 1 }, async (ctx: TrainContext, metrics: EpochMetrics) => {
      const current = monitoredMetric(metrics, options.monitor, PLUGIN_NAME);
      if (ctx.epoch < options.startEpoch) return;
      if (isImprovement(current, best, mode, options.minDelta)) {
        best = current;
        bestEpoch = metrics.epoch;
        wait = 0;
        if (options.restoreBestWeights) keepWeights(ctx);
        return;
      }
      wait++;
      if (wait < options.patience) return;
      let reason =
        `${PLUGIN_NAME}: ${options.monitor} did not improve for ${wait} epoch${wait === 1 ? '' : 's'}` +
        (best === undefined ? ' (no finite value yet)' : ` (best ${fmt(best)} at epoch ${bestEpoch})`);
      if (options.restoreBestWeights && bestWeights.length) {
        ctx.model.setWeights(bestWeights);
        reason += `; restored the weights of epoch ${bestEpoch}`;
      }
      ctx.logger.info(`${reason}; stopping after epoch ${metrics.epoch}`);
      throw new StopTraining(reason);
    });

    // every exit: free the copy of the best weights
    api.hooks.teardown.tapPromise({ name: PLUGIN_NAME }, async () => drop());

    const state: PluginState = {
      save: () => ({
        json: { best, bestEpoch, wait, weights: bestWeights.length } satisfies EarlyStoppingJson,
        tensors: Object.fromEntries(bestWeights.map((t, i) => [String(i), t])),
      }),
      load: (s) => {
        const json = s.json as EarlyStoppingJson;
        best = json.best ?? undefined;
        bestEpoch = json.bestEpoch ?? undefined;
        wait = json.wait;
        const loaded: tf.Tensor[] = [];
        for (let i = 0; i < json.weights; i++) {
          const t = s.tensors?.[String(i)];
          if (!t) throw new Error(`${PLUGIN_NAME}: checkpoint has no best weight ${i}`);
          loaded.push(t);
        }
        drop();
        // the checkpointer frees what it loaded: keep copies
        bestWeights = loaded.map((t) => tf.keep(tf.clone(t)));
      },
    };
    return { state };
  },
});
