import * as tf from '@tensorflow/tfjs-core';

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
