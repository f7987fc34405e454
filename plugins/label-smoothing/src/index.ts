import * as tf from '@tensorflow/tfjs-core';
import { definePlugin, STAGE_LOSS, type LossState } from '@tricks/core';

export const PLUGIN_NAME = 'label-smoothing';
/** The loss hook's target-rewriting phase: after the weights (from the raw targets), before the terms computed from the final targets (focal-loss). */
export const STAGE = STAGE_LOSS - 10;

export interface LabelSmoothingOptions {
  /** Mass moved to the uniform distribution (PyTorch's label_smoothing). */
  epsilon: number;
}

/** (1 - eps) * y + eps / K, for one-hot or soft targets (as torch.nn.functional.cross_entropy does). */
export function smoothTargets(targets: tf.Tensor2D, epsilon: number): tf.Tensor2D {
  const k = targets.shape[1];
  return tf.tidy(() => tf.add(tf.mul(targets, 1 - epsilon), epsilon / k));
}

/** Rewrites `targets`; the trainer's base loss (TOKENS.Loss) then uses the smoothed ones, with the sample weights. */
export function smoothLoss(state: LossState, epsilon: number): LossState {
  if (epsilon === 0) return state;
  return { ...state, targets: smoothTargets(state.targets, epsilon) };
}

export default definePlugin<LabelSmoothingOptions>({
  name: PLUGIN_NAME,
  description:
    'label smoothing: targets (1-eps)*y + eps/K, equal to PyTorch cross_entropy(label_smoothing=eps); composes with mixup/cutmix soft targets',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: { epsilon: { type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0.1 } },
  },
  apply(api, options) {
    api.hooks.loss.tap({ name: PLUGIN_NAME, stage: STAGE }, (state) => smoothLoss(state, options.epsilon));
  },
});
