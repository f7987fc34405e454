import * as tf from '@tensorflow/tfjs-core';
import { definePlugin, STAGE_REGULARIZE, STAGE_REPORT, type JSONSchema } from '@tricks/core';

/** The plugin's short name: what a config lists, and the name of every tap and loss term it adds. */
export const PLUGIN_NAME = {{nameLiteral}};

export interface Options {
  /** Weight of the z-loss term. */
  weight: number;
}

/** Options are validated (and defaults filled in) before training starts. */
export const schema: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    weight: { type: 'number', minimum: 0, maximum: 1, default: 1e-4, description: 'weight of mean(logsumexp(logits)^2) in the loss' },
  },
};

/**
 * The example trick, z-loss (PaLM, Chowdhery et al. 2022, section 5): weight * mean(logsumexp(logits)^2)
 * keeps the softmax normalizer near 1, so logits do not drift. Replace it with your own trick.
 */
export function zLoss(logits: tf.Tensor2D, weight: number): tf.Scalar {
  return tf.mul(weight, tf.mean(tf.square(tf.logSumExp(logits, 1)))) as tf.Scalar;
}

export default definePlugin<Options>({
  name: PLUGIN_NAME,
  description: {{descriptionLiteral}},
  schema,
  apply(api, options) {
    // 1. loss (SyncWaterfallHook, inside the step's tf.tidy): add a named term; the trainer minimizes the sum.
    api.hooks.loss.tap({ name: PLUGIN_NAME, stage: STAGE_REGULARIZE }, (state) => ({
      ...state,
      terms: { ...state.terms, [PLUGIN_NAME]: zLoss(state.logits, options.weight) },
    }));
    // 2. epoch (AsyncSeriesHook, after evaluation): report the last step's term next to the other metrics.
    api.hooks.epoch.tapPromise({ name: PLUGIN_NAME, stage: STAGE_REPORT }, async (ctx, metrics) => {
      metrics[PLUGIN_NAME] = ctx.lastTerms[PLUGIN_NAME];
      ctx.logger.info(PLUGIN_NAME + ': term ' + ctx.lastTerms[PLUGIN_NAME].toExponential(3) + ' at the end of epoch ' + metrics.epoch);
    });
  },
});
