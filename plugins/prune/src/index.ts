import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  definePlugin,
  saveModel,
  STAGE_COMPRESS,
  STAGE_REGULARIZE,
  writeDirAtomic,
  writeFileAtomic,
  type Artifact,
  type PluginState,
  type TrainContext,
} from '@tricks/core';
import { modelCost, weightOf } from '@tricks/models';
import { applyMasks, channelGraph, shrinkModel, type ChannelGraph, type ChannelGroup, type KeepPlan } from './channels.js';

export {
  type ChannelConsumer,
  type ChannelGraph,
  type ChannelGroup,
  type ChannelSegment,
  type KeepPlan,
  applyMasks,
  channelGraph,
  shrinkModel,
} from './channels.js';

export const PLUGIN_NAME = 'prune';

export interface PruneOptions {
  /** Filter importance: L1 norm (Li et al. 2017), L2 norm, or |gamma| of the group's BatchNorms (network slimming). */
  criterion: 'l1' | 'l2' | 'bn';
  /** Fraction of the channels of every prunable group removed. */
  ratio: number;
  /** 'oneshot': prune after `epoch` epochs and fine-tune; 'gradual': AGP, cubic ramp from startEpoch to endEpoch. */
  schedule: 'oneshot' | 'gradual';
  epoch: number;
  startEpoch: number;
  /** Gradual: the ramp reaches `ratio` after this many epochs (null: epochs - 1, leaving the last epoch to fine-tune). */
  endEpoch: number | null;
  /** Gradual: steps between mask updates. */
  frequency: number;
  /** Kept channel counts are rounded to a multiple of this (e.g. 8 for SIMD-friendly widths). */
  roundTo: number;
  /** Layers whose channels are never pruned (and every layer coupled to them). */
  ignore: string[];
  /** Weight of the sparsity term added to the loss until pruning ends (L1 of the importance measure). */
  sparsity: number;
}

/** Per-channel importance of a group: summed over its producers' filters (l1, l2) or its BatchNorms' |gamma| (bn). */
export function groupImportance(model: LayersModel, g: ChannelGroup, criterion: PruneOptions['criterion']): Float32Array {
  return tf.tidy(() => {
    const bns = g.members.filter((m) => model.getLayer(m).getClassName() === 'BatchNormalization');
    const parts: tf.Tensor[] = [];
    if (criterion === 'bn' && bns.length)
      for (const b of bns) parts.push(tf.abs(weightOf(model.getLayer(b), 'gamma')?.read() ?? tf.ones([g.size])));
    else {
      for (const p of g.producers) {
        const k = weightOf(model.getLayer(p), 'kernel')!.read();
        const flat = tf.reshape(k, [-1, g.size]);
        parts.push(criterion === 'l2' ? tf.sqrt(tf.sum(tf.square(flat), 0)) : tf.sum(tf.abs(flat), 0));
      }
    }
    return tf.addN(parts).dataSync() as Float32Array;
  });
}

/** Channels kept at `ratio`: count = size - round(ratio*size), rounded to `roundTo`, the most important ones, sorted. */
export function keepCount(size: number, ratio: number, roundTo: number): number {
  const keep = size - Math.round(ratio * size);
  return Math.min(size, Math.max(roundTo, Math.round(keep / roundTo) * roundTo, 1));
}

export function planPruning(
  model: LayersModel,
  graph: ChannelGraph,
  ratio: number,
  o: Pick<PruneOptions, 'criterion' | 'roundTo'>,
): KeepPlan {
  const plan: KeepPlan = new Map();
  for (const g of graph.groups) {
    if (g.fixed.length) continue;
    const n = keepCount(g.size, ratio, o.roundTo);
    if (n >= g.size) continue;
    const imp = groupImportance(model, g, o.criterion);
    const order = Array.from(imp.keys()).sort((a, b) => imp[b] - imp[a] || a - b);
    plan.set(
      g.id,
      order.slice(0, n).sort((a, b) => a - b),
    );
  }
  return plan;
}

/** AGP (Zhu & Gupta 2017): r_t = r_f * (1 - (1 - (t - t0) / (t1 - t0))^3), clamped to [0, r_f]. */
export const agpRatio = (final: number, t: number, t0: number, t1: number) =>
  t <= t0 ? 0 : t >= t1 ? final : final * (1 - (1 - (t - t0) / (t1 - t0)) ** 3);

/** Inference latency (ms per image) of a model on the current backend: best of `repeats` batches of `batch`. */
export async function latencyMs(model: LayersModel, inputShape: number[], batch = 32, repeats = 3): Promise<number> {
  const x = tf.randomUniform([batch, ...inputShape]);
  let best = Infinity;
  for (let i = 0; i <= repeats; i++) {
    const t0 = performance.now();
    const y = model.predict(x) as tf.Tensor;
    await y.data();
    y.dispose();
    if (i > 0) best = Math.min(best, performance.now() - t0); // the first run warms up
  }
  x.dispose();
  return best / batch;
}

export interface ModelStats {
  params: number;
  macs: number;
  latency_ms: number;
  top1?: number;
}

async function stats(model: LayersModel, ctx: TrainContext, top1?: number): Promise<ModelStats> {
  const c = modelCost(model);
  return { params: c.params, macs: c.macs, latency_ms: await latencyMs(model, ctx.inputShape), ...(top1 !== undefined ? { top1 } : {}) };
}

export default definePlugin<PruneOptions>({
  name: PLUGIN_NAME,
  description: 'structured channel pruning over a channel dependency graph (L1/L2/BN-gamma), one-shot or AGP, exported physically smaller',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      criterion: { enum: ['l1', 'l2', 'bn'], default: 'l1' },
      ratio: { type: 'number', minimum: 0, maximum: 0.95, default: 0.5 },
      schedule: { enum: ['oneshot', 'gradual'], default: 'oneshot' },
      epoch: { type: 'integer', minimum: 1, default: 1 },
      startEpoch: { type: 'integer', minimum: 0, default: 0 },
      endEpoch: { type: ['integer', 'null'], minimum: 1, default: null },
      frequency: { type: 'integer', minimum: 1, default: 10 },
      roundTo: { type: 'integer', minimum: 1, default: 1 },
      ignore: { type: 'array', items: { type: 'string' }, default: [] },
      sparsity: { type: 'number', minimum: 0, default: 1e-5 },
    },
  },
  apply(api, options) {
    let graph: ChannelGraph | undefined;
    let plan: KeepPlan | undefined;
    let done = false;
    let before: ModelStats | undefined;
    let afterPrune: number | undefined;
    const endEpoch = () => options.endEpoch ?? Math.max(options.startEpoch + 1, api.config.epochs - 1);

    const prune = (ctx: TrainContext, ratio: number) => {
      plan = planPruning(ctx.model, graph!, ratio, options);
      applyMasks(ctx.model, graph!, plan);
    };

    api.hooks.setup.tapPromise({ name: PLUGIN_NAME }, async (ctx) => {
      graph = channelGraph(ctx.model, options.ignore);
      for (const l of options.ignore)
        if (!ctx.model.layers.some((x) => x.name === l)) ctx.logger.warn(`prune: ignore names ${l}, which is not a layer of the model`);
      before ??= await stats(ctx.model, ctx);
      const free = graph.groups.filter((g) => !g.fixed.length);
      ctx.logger.info(
        `prune: ${graph.groups.length} channel groups, ${free.length} prunable (${free.reduce((n, g) => n + g.size, 0)} channels)`,
      );
      for (const g of free)
        if (g.inexact)
          ctx.logger.warn(
            `prune: channels of ${g.producers.join(', ')} pass ${g.inexact}, which does not map 0 to 0: the smaller model differs slightly from the masked one`,
          );
    });
    // L1 sparsity on the importance measure while pruning is ahead (network slimming's lambda * sum |gamma|).
    api.hooks.loss.tap({ name: PLUGIN_NAME, stage: STAGE_REGULARIZE }, (state, ctx) => {
      if (done || !options.sparsity || !graph) return state;
      const terms: tf.Tensor[] = [];
      for (const g of graph.groups) {
        if (g.fixed.length) continue;
        const bns = g.members.filter((m) => ctx.model.getLayer(m).getClassName() === 'BatchNormalization');
        if (options.criterion === 'bn' && bns.length)
          for (const b of bns) terms.push(tf.sum(tf.abs(weightOf(ctx.model.getLayer(b), 'gamma')!.read())));
        else
          for (const p of g.producers) {
            const flat = tf.reshape(weightOf(ctx.model.getLayer(p), 'kernel')!.read(), [-1, g.size]);
            terms.push(options.criterion === 'l2' ? tf.sum(tf.sqrt(tf.add(tf.sum(tf.square(flat), 0), 1e-12))) : tf.sum(tf.abs(flat)));
          }
      }
      if (terms.length) state.terms.sparsity = tf.mul(tf.addN(terms), options.sparsity) as tf.Scalar;
      return state;
    });
    api.hooks.step.tap({ name: PLUGIN_NAME, stage: STAGE_COMPRESS }, (ctx) => {
      if (!graph) return;
      if (options.schedule === 'gradual' && !done) {
        const t0 = options.startEpoch * ctx.stepsPerEpoch;
        const t1 = endEpoch() * ctx.stepsPerEpoch;
        const t = ctx.step + 1;
        if (t > t0 && ((t - t0) % options.frequency === 0 || t >= t1)) {
          prune(ctx, agpRatio(options.ratio, t, t0, t1));
          if (t >= t1) done = true;
        }
      }
      if (plan) applyMasks(ctx.model, graph, plan);
    });
    api.hooks.epoch.tapPromise({ name: PLUGIN_NAME }, async (ctx, metrics) => {
      if (!graph || !before) return;
      const finished = ctx.epoch + 1;
      // the dense model's accuracy: at the one-shot epoch, or when the gradual ramp starts
      if (finished === (options.schedule === 'oneshot' ? options.epoch : options.startEpoch)) before.top1 = metrics.val_top1;
      if (options.schedule === 'oneshot' && !done && finished === options.epoch) {
        prune(ctx, options.ratio);
        done = true;
        afterPrune = (await ctx.evaluate()).top1;
        metrics.prune_top1_before_finetune = afterPrune;
        ctx.logger.info(
          `prune: removed ${options.ratio} of the channels of ${plan!.size} groups after epoch ${finished}; val_top1 ${metrics.val_top1.toFixed(4)} -> ${afterPrune.toFixed(4)} before fine-tuning`,
        );
      }
    });
    api.hooks.export.tapPromise({ name: PLUGIN_NAME, stage: STAGE_COMPRESS }, async (artifact: Artifact, ctx: TrainContext) => {
      if (!plan?.size) {
        ctx.logger.warn(`prune: nothing was pruned (epoch ${options.epoch} of ${ctx.config.epochs}); the dense model is exported`);
        return artifact;
      }
      // the same graph on the export model (same layers, e.g. with EMA weights): mask, then rebuild smaller
      const g = channelGraph(artifact.model, options.ignore);
      applyMasks(artifact.model, g, plan);
      const small = await shrinkModel(artifact.model, g, plan);
      const after = await stats(small, ctx, (await ctx.evaluate(small)).top1);
      const report = {
        criterion: options.criterion,
        ratio: options.ratio,
        schedule: options.schedule,
        groups: plan.size,
        backend: ctx.backend,
        before,
        after_prune_before_finetune: afterPrune,
        after,
        macs_ratio: before ? after.macs / before.macs : undefined,
        speedup: before ? before.latency_ms / after.latency_ms : undefined,
      };
      await writeFileAtomic(join(ctx.out, 'prune-report.json'), JSON.stringify(report, null, 1));
      small.setUserDefinedMetadata({
        ...((artifact.model.getUserDefinedMetadata() as object) ?? {}),
        prune: { ratio: options.ratio, criterion: options.criterion },
      });
      const dir = join(ctx.out, 'model-pruned');
      await writeDirAtomic(dir, (tmp) => saveModel(small, tmp));
      const files = ['model.json', 'weights.bin'];
      ctx.logger.info(
        `prune: ${dir}: params ${before?.params} -> ${after.params}, MACs ${before?.macs} -> ${after.macs}, ${ctx.backend} latency ${before?.latency_ms.toFixed(3)} -> ${after.latency_ms.toFixed(3)} ms/img, top-1 ${before?.top1?.toFixed(4)} -> ${after.top1?.toFixed(4)}`,
      );
      return { ...artifact, format: 'tfjs', dir, files, model: small, report: { ...artifact.report, prune: report } };
    });
    // the schedule's progress and the masks' plan resume with the run
    const state: PluginState = {
      save: () => ({ json: { done, plan: plan ? [...plan] : null, before, afterPrune } }),
      load: (s) => {
        const j = s.json as { done: boolean; plan: [number, number[]][] | null; before?: ModelStats; afterPrune?: number };
        done = j.done;
        plan = j.plan ? new Map(j.plan) : undefined;
        before = j.before;
        afterPrune = j.afterPrune;
      },
    };
    return { state };
  },
});
