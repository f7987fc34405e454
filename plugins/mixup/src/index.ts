import { definePlugin, STAGE_MIX, type Batch, type TrainContext } from '@tricks/core';
import { mixupBatch, type MixInfo } from '@tricks/helper-augment';

export const PLUGIN_NAME = 'mixup';

export interface MixupOptions {
  /** lambda ~ Beta(alpha, alpha), one per batch. */
  alpha: number;
  /** Probability that a batch is mixed. */
  prob: number;
  /** First (0-based) epoch without mixing, to train the last epochs on clean images; null: mix every epoch. */
  offEpoch: number | null;
}

/**
 * One mixup step (Zhang et al. 2018, as fastai's MixUp and timm's Mixup with one lambda per batch): the
 * partner of row i is row perm[i] of a seeded permutation, so any batch size works, odd ones included.
 * A batch that an earlier tap mixed already (cutmix, meta.mix set) is left alone.
 */
export function mixupStep(batch: Batch, ctx: Pick<TrainContext, 'rng' | 'epoch'>, o: MixupOptions): Batch {
  if (batch.meta.mix) return batch;
  if (o.offEpoch !== null && ctx.epoch >= o.offEpoch) return batch;
  if (o.prob < 1 && ctx.rng.next() >= o.prob) return batch;
  const n = batch.x.shape[0];
  const lambda = ctx.rng.beta(o.alpha, o.alpha);
  const perm = ctx.rng.permutation(n);
  return mixupBatch(batch, lambda, perm);
}

export type { MixInfo };

export default definePlugin<MixupOptions>({
  name: PLUGIN_NAME,
  description: 'mixup: x = lam*x + (1-lam)*x[perm], y likewise (soft targets), lam ~ Beta(alpha, alpha) per batch',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      alpha: { type: 'number', exclusiveMinimum: 0, maximum: 100, default: 0.4 },
      prob: { type: 'number', minimum: 0, maximum: 1, default: 1 },
      offEpoch: { type: ['integer', 'null'], minimum: 0, default: null },
    },
  },
  apply(api, options) {
    api.hooks.batch.tap({ name: PLUGIN_NAME, stage: STAGE_MIX }, (batch, ctx) => mixupStep(batch, ctx, options));
  },
});
