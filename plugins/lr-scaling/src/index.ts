import { definePlugin } from '@tricks/core';

export const PLUGIN_NAME = 'lr-scaling';

export interface LrScalingOptions {
  /** The batch size the configured lr was tuned for (Goyal et al.: 256). */
  referenceBatchSize: number;
}

/** The linear scaling rule: lr = baseLr * batchSize / referenceBatchSize. */
export const scaledLr = (baseLr: number, batchSize: number, reference = 256) => (baseLr * batchSize) / reference;

export default definePlugin<LrScalingOptions>({
  name: PLUGIN_NAME,
  description: 'linear learning-rate scaling: lr = optimizer.lr * batchSize / 256 (Goyal et al. 2017)',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: { referenceBatchSize: { type: 'integer', minimum: 1, default: 256 } },
  },
  apply(api, options) {
    api.hooks.setup.tapPromise({ name: PLUGIN_NAME }, async (ctx) => {
      const before = ctx.baseLr;
      // The trainer's base lr: the schedule starts from it every step, and the logged lr shows it.
      ctx.baseLr = scaledLr(before, ctx.config.batchSize, options.referenceBatchSize);
      ctx.optimizer.setLearningRate(ctx.baseLr);
      ctx.logger.info(`lr-scaling: base lr ${before} x ${ctx.config.batchSize}/${options.referenceBatchSize} = ${ctx.baseLr}`);
    });
  },
});
