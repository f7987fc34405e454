import * as tf from '@tensorflow/tfjs-core';
import { TricksError } from '../hooks/errors.js';

/** Global L2 norm of all gradients, sqrt(sum_i ||g_i||^2), as a scalar tensor (no host sync). */
export function globalNorm(grads: tf.NamedTensorMap): tf.Scalar {
  return tf.tidy(() => {
    const squares = Object.values(grads)
      .filter((g) => g != null)
      .map((g) => tf.sum(tf.square(g)));
    if (!squares.length) return tf.scalar(0);
    return tf.sqrt(tf.addN(squares)) as tf.Scalar;
  });
}

/**
 * Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_ (norm_type 2): every gradient is
 * multiplied by min(1, maxNorm / (totalNorm + 1e-6)). Computed on the device, without reading the norm
 * back. Returns new tensors under the same names; the caller owns them (inside the step's tidy they are
 * disposed with it). Non-finite norms are not special-cased (like PyTorch's default): the trainer's
 * NaN check catches them.
 */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number): tf.NamedTensorMap {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) {
    throw new TricksError(
      `optimizer.clipNorm must be a positive finite number, got ${maxNorm}`,
      'set optimizer.clipNorm to e.g. 1.0, or remove it to turn clipping off',
    );
  }
  return tf.tidy(() => {
    const norm = globalNorm(grads);
    const coef = tf.minimum(tf.div(maxNorm, tf.add(norm, 1e-6)), 1);
    const out: tf.NamedTensorMap = {};
    for (const [name, g] of Object.entries(grads)) {
      if (g == null) continue;
      out[name] = tf.mul(g, coef);
    }
    return out;
  });
}
