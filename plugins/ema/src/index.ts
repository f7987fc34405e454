import { join } from 'node:path';
import { readdir } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  definePlugin,
  saveModel,
  STAGE_REGULARIZE,
  writeDirAtomic,
  type Artifact,
  type PluginState,
  type TrainContext,
} from '@tricks/core';

export const PLUGIN_NAME = 'ema';

export interface EmaOptions {
  /** Maximum decay per step. */
  decay: number;
  /** TF-style warm-up: the decay of update n (0-based) is min(decay, (1 + n) / (10 + n)). */
  warmup: boolean;
  /** Evaluate the EMA weights on the validation set at the end of every epoch. */
  evaluate: boolean;
  /** Export the EMA weights as OUT/model-ema: when their last evaluation beats the trained weights', always, or never. */
  export: 'better' | 'always' | 'never';
}

/** The decay used for update number n (0-based), as tf.train.ExponentialMovingAverage with num_updates. */
export const emaDecay = (decay: number, n: number, warmup: boolean) => (warmup ? Math.min(decay, (1 + n) / (10 + n)) : decay);

/**
 * Shadow copies of every float weight of a model (trainable ones and BatchNorm moving statistics, as
 * timm's ModelEmaV2 averages the whole state_dict), updated as shadow -= (1 - d) * (shadow - w).
 */
export class WeightEma {
  /** The model's weights when the EMA started, paired with `shadow` by position: model.weights reorders when a layer's trainable flag changes (finetune). */
  readonly vars: LayersModel['weights'];
  readonly shadow: tf.Variable[];
  updates = 0;

  constructor(
    readonly model: LayersModel,
    readonly decay: number,
    readonly warmup: boolean,
  ) {
    this.vars = model.weights.slice();
    this.shadow = this.vars.map((w) => tf.variable(w.read(), false));
  }

  /** One update after an optimizer step; returns the decay it used. */
  update(): number {
    const d = emaDecay(this.decay, this.updates, this.warmup);
    tf.tidy(() => {
      this.vars.forEach((w, i) => {
        const s = this.shadow[i]!;
        if (s.dtype !== 'float32') s.assign(w.read());
        else s.assign(tf.sub(s, tf.mul(tf.sub(s, w.read()), 1 - d)));
      });
    });
    this.updates++;
    return d;
  }

  /** Runs f with the EMA weights in the model, then puts the trained weights back. */
  async withShadow<T>(f: () => Promise<T>): Promise<T> {
    const saved = this.vars.map((w) => tf.clone(w.read()));
    this.vars.forEach((w, i) => w.write(this.shadow[i]!));
    try {
      return await f();
    } finally {
      this.vars.forEach((w, i) => w.write(saved[i]!));
      tf.dispose(saved);
    }
  }

  dispose(): void {
    tf.dispose(this.shadow);
  }
}

export default definePlugin<EmaOptions>({
  name: PLUGIN_NAME,
  description: 'exponential moving average of the weights (TF-style warm-up), evaluated each epoch and exported when better',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      decay: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.9998 },
      warmup: { type: 'boolean', default: true },
      evaluate: { type: 'boolean', default: true },
      export: { enum: ['better', 'always', 'never'], default: 'better' },
    },
  },
  apply(api, options) {
    let ema: WeightEma | undefined;
    let last: { top1: number; loss: number } | undefined;
    api.hooks.setup.tapPromise({ name: PLUGIN_NAME }, async (ctx) => {
      ema = new WeightEma(ctx.model, options.decay, options.warmup);
    });
    api.hooks.step.tap({ name: PLUGIN_NAME, stage: STAGE_REGULARIZE }, () => {
      ema?.update();
    });
    api.hooks.epoch.tapPromise({ name: PLUGIN_NAME }, async (ctx: TrainContext, metrics) => {
      if (!ema || !options.evaluate) return;
      const r = await ema.withShadow(() => ctx.evaluate(ctx.model));
      last = { top1: r.top1, loss: r.loss };
      metrics.ema_val_top1 = r.top1;
      metrics.ema_val_loss = r.loss;
      ctx.logger.info(
        `ema: val_top1 ${r.top1.toFixed(4)} (trained weights ${metrics.val_top1.toFixed(4)}), val_loss ${r.loss.toFixed(4)}, ${ema.updates} updates`,
      );
    });
    api.hooks.export.tapPromise({ name: PLUGIN_NAME, stage: STAGE_REGULARIZE }, async (artifact: Artifact, ctx: TrainContext) => {
      if (!ema || options.export === 'never') return artifact;
      const raw = ctx.metrics.at(-1)?.val_top1;
      if (options.export === 'better' && !(last && raw !== undefined && last.top1 > raw)) {
        ctx.logger.info(`ema: not exported (EMA val_top1 ${last?.top1.toFixed(4) ?? 'not evaluated'} vs trained ${raw?.toFixed(4)})`);
        return artifact;
      }
      // The run is over: the model keeps the EMA weights, so later export taps (quantize...) work on them.
      const model = artifact.model;
      model.setWeights(ema.shadow);
      const report = {
        ema: true,
        decay: options.decay,
        warmup: options.warmup,
        updates: ema.updates,
        ema_val_top1: last?.top1,
        trained_val_top1: raw,
      };
      model.setUserDefinedMetadata({ ...((model.getUserDefinedMetadata() as object) ?? {}), ema: report });
      const dir = join(ctx.out, 'model-ema');
      await writeDirAtomic(dir, (tmp) => saveModel(model, tmp));
      ctx.logger.info(`ema: exported the EMA weights to ${dir}`);
      return { ...artifact, dir, files: await readdir(dir), report: { ...artifact.report, ...report } };
    });
    // every exit: free the shadow weights
    api.hooks.teardown.tapPromise({ name: PLUGIN_NAME }, async () => {
      ema?.dispose();
      ema = undefined;
    });
    // the shadow weights and the update count resume with the run
    const state: PluginState = {
      save: () => ({
        json: { updates: ema?.updates ?? 0, last },
        tensors: Object.fromEntries((ema?.shadow ?? []).map((t, i) => [String(i), t])),
      }),
      load: (state) => {
        if (!ema) throw new Error('ema: state loaded before setup');
        const json = state.json as { updates: number; last?: { top1: number; loss: number } };
        ema.shadow.forEach((s, i) => {
          const t = state.tensors?.[String(i)];
          if (!t || t.shape.join('x') !== s.shape.join('x')) throw new Error(`ema: checkpoint has no EMA weight ${i} of shape ${s.shape}`);
          s.assign(t);
        });
        ema.updates = json.updates;
        last = json.last;
      },
    };
    return { state };
  },
});
