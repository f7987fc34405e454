import * as tf from '@tensorflow/tfjs-core';
import type { LossState } from '../contract.js';

/**
 * Softmax cross-entropy with (possibly soft) targets: mean over the batch of -sum(t * log_softmax(z)).
 * With per-sample weights it is sum(w * l) / sum(w), as PyTorch's weighted mean reduction.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor2D, sampleWeights?: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const perSample = tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), -1));
    return weightedMean(perSample, sampleWeights);
  });
}

/** Mean of per-sample values, weighted when weights are given. */
export function weightedMean(perSample: tf.Tensor1D | tf.Tensor, sampleWeights?: tf.Tensor1D): tf.Scalar {
  if (!sampleWeights) return tf.mean(perSample) as tf.Scalar;
  return tf.div(tf.sum(tf.mul(perSample, sampleWeights)), tf.maximum(tf.sum(sampleWeights), 1e-12)) as tf.Scalar;
}

/** The base loss service: (logits, targets, weights) -> scalar. Rebind TOKENS.Loss to change it. */
export type LossFunction = (logits: tf.Tensor2D, targets: tf.Tensor2D, sampleWeights?: tf.Tensor1D) => tf.Scalar;

/**
 * The terms the trainer minimizes (their sum) after the loss hook: the base term `ce` = ceScale *
 * loss(logits, targets, sampleWeights), computed once from the final targets and weights (left out when
 * ceScale is 0), then the taps' own terms. A tap that sets `terms.ce` itself is an error: it would undo a
 * rebound TOKENS.Loss.
 */
export function lossTerms(state: LossState, loss: LossFunction = crossEntropy): Record<string, tf.Scalar> {
  if ('ce' in state.terms)
    throw new Error(
      'loss hook: terms.ce is the base term the trainer computes after the taps; set state.targets, state.sampleWeights or state.ceScale instead',
    );
  const scale = state.ceScale ?? 1;
  if (scale === 0) return { ...state.terms };
  const base = loss(state.logits, state.targets, state.sampleWeights);
  return { ce: scale === 1 ? base : (tf.mul(base, scale) as tf.Scalar), ...state.terms };
}
