import { mixupBatch } from '@tricks/helper-augment';
import { definePlugin, STAGE_MIX, type Batch, type TrainContext } from '@tricks/core';
import { cutmixBatch, cutmixBox } from './box.js';

export { cutmixBatch, cutmixBox } from './box.js';

export const PLUGIN_NAME = 'cutmix';
/** The batch hook's mixing phase; cutmix taps it `before: 'mixup'`: a batch cutmix mixed is marked (meta.mix) and mixup leaves it. */
export const STAGE = STAGE_MIX;

export interface CutmixOptions {
  /** lambda ~ Beta(alpha, alpha). */
  alpha: number;
  /** Probability that a batch is mixed at all. */
  prob: number;
  /** Probability that a mixed batch gets mixup instead of cutmix (timm's switch_prob). */
  switchProb: number;
  /** alpha of the mixup draws when switching. */
  mixupAlpha: number;
  /** First (0-based) epoch without mixing; null: every epoch. */
  offEpoch: number | null;
}

/**
 * One CutMix step (Yun et al. 2019; timm's Mixup with cutmix_alpha, switch_prob, prob): one lambda, one box
 * and one seeded permutation per batch; lambda is corrected to the clipped box's area.
 */
export function cutmixStep(batch: Batch, ctx: Pick<TrainContext, 'rng' | 'epoch'>, o: CutmixOptions): Batch {
  if (batch.meta.mix) return batch;
  if (o.offEpoch !== null && ctx.epoch >= o.offEpoch) return batch;
  if (o.prob < 1 && ctx.rng.next() >= o.prob) return batch;
  const [n, h, w] = batch.x.shape;
  if (o.switchProb > 0 && ctx.rng.next() < o.switchProb) {
    const lambda = ctx.rng.beta(o.mixupAlpha, o.mixupAlpha);
    return mixupBatch(batch, lambda, ctx.rng.permutation(n));
  }
  const drawn = ctx.rng.beta(o.alpha, o.alpha);
  const { box, lambda } = cutmixBox(ctx.rng, h, w, drawn);
  return cutmixBatch(batch, box, lambda, ctx.rng.permutation(n));
}

export default definePlugin<CutmixOptions>({
  name: PLUGIN_NAME,
  description:
    'CutMix: paste a box of side sqrt(1-lam) from a permuted partner; targets mixed by the box area; switchProb alternates with mixup',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      alpha: { type: 'number', exclusiveMinimum: 0, maximum: 100, default: 1.0 },
      prob: { type: 'number', minimum: 0, maximum: 1, default: 1 },
      switchProb: { type: 'number', minimum: 0, maximum: 1, default: 0 },
      mixupAlpha: { type: 'number', exclusiveMinimum: 0, maximum: 100, default: 0.4 },
      offEpoch: { type: ['integer', 'null'], minimum: 0, default: null },
    },
  },
  apply(api, options) {
    api.hooks.batch.tap({ name: PLUGIN_NAME, stage: STAGE, before: 'mixup' }, (batch, ctx) => cutmixStep(batch, ctx, options));
  },
});
