import * as tf from '@tensorflow/tfjs-core';
import { definePlugin, STAGE_LOSS, TricksError, weightedMean, type LossState } from '@tricks/core';

export const PLUGIN_NAME = 'focal-loss';
/** After label-smoothing (which rewrites the targets), before kd (which scales the supervised term). */
export const STAGE = STAGE_LOSS;

export interface FocalLossOptions {
  /** Focusing parameter; 0 gives (alpha-weighted) cross-entropy. */
  gamma: number;
  /** Class weight: one number for every class, or one per class. */
  alpha: number | number[];
}

/**
 * Per-sample softmax focal loss: sum_k y_k * alpha_k * (1 - p_k)^gamma * (-log p_k), p = softmax(logits).
 * For one-hot y this is -alpha_t (1 - p_t)^gamma log p_t (Lin et al. 2017, multi-class softmax form); for
 * soft targets (label smoothing, mixup) each class is weighted by its target mass, so gamma = 0, alpha = 1
 * is exactly the soft-target cross-entropy.
 */
export function focalPerSample(logits: tf.Tensor2D, targets: tf.Tensor2D, gamma: number, alpha: number | number[]): tf.Tensor1D {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    let w: tf.Tensor = targets;
    if (gamma !== 0) {
      // clamp: 1 - p can round below 0, and pow's gradient at 0 is infinite for gamma < 1
      const q = tf.maximum(tf.sub(1, tf.exp(logp)), 1e-12);
      w = tf.mul(w, gamma === 1 ? q : gamma === 2 ? tf.square(q) : tf.pow(q, gamma));
    }
    if (Array.isArray(alpha)) w = tf.mul(w, tf.tensor1d(alpha));
    else if (alpha !== 1) w = tf.mul(w, alpha);
    return tf.neg(tf.sum(tf.mul(w, logp), -1)) as tf.Tensor1D;
  });
}

export function focalLoss(
  logits: tf.Tensor2D,
  targets: tf.Tensor2D,
  gamma: number,
  alpha: number | number[],
  sampleWeights?: tf.Tensor1D,
): tf.Scalar {
  return tf.tidy(() => weightedMean(focalPerSample(logits, targets, gamma, alpha), sampleWeights));
}

/** Replaces the base term by `terms.focal` (ceScale 0; same targets, same sample weights). */
export function focalTerms(state: LossState, o: FocalLossOptions): LossState {
  const focal = focalLoss(state.logits, state.targets, o.gamma, o.alpha, state.sampleWeights);
  return { ...state, ceScale: 0, terms: { ...state.terms, focal } };
}

export default definePlugin<FocalLossOptions>({
  name: PLUGIN_NAME,
  description:
    'softmax focal loss -alpha_t (1-p_t)^gamma log p_t in place of cross-entropy (soft targets: each class weighted by its target mass)',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      gamma: { type: 'number', minimum: 0, default: 2 },
      alpha: {
        anyOf: [
          { type: 'number', exclusiveMinimum: 0 },
          { type: 'array', items: { type: 'number', minimum: 0 }, minItems: 1 },
        ],
        default: 1,
      },
    },
  },
  apply(api, options) {
    api.hooks.setup.tapPromise({ name: PLUGIN_NAME }, async (ctx) => {
      if (Array.isArray(options.alpha) && options.alpha.length !== ctx.numClasses) {
        throw new TricksError(
          `option "plugins.focal-loss.alpha" has ${options.alpha.length} values, the data has ${ctx.numClasses} classes`,
          `give one alpha per class (${ctx.numClasses} numbers), or a single number`,
        );
      }
    });
    api.hooks.loss.tap({ name: PLUGIN_NAME, stage: STAGE }, (state) => focalTerms(state, options));
  },
});
