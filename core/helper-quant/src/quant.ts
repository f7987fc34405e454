/**
 * Quantization arithmetic shared by the qat plugin (fake quantization while training) and the exporters
 * (int8 weights and QDQ activations on the same grid). Everything follows PyTorch 1.13's
 * torch.ao.quantization: fake_quantize_per_tensor_affine / per_channel_affine and the observers'
 * calculate_qparams, so a model trained here quantizes as PyTorch's would. QAT's own weight fake quantization
 * and moving-average observer are in the qat plugin (plugins/qat/src/quant.ts).
 */
import * as tf from '@tensorflow/tfjs-core';

/** torch.finfo(torch.float32).eps: the smallest scale calculate_qparams returns. */
export const SCALE_EPS = 1.1920928955078125e-7;

export interface QRange {
  qmin: number;
  qmax: number;
}

/** Signed symmetric weights: [-2^(b-1), 2^(b-1)-1] (qint8 for b = 8). */
export const weightRange = (bits: number): QRange => ({ qmin: -(2 ** (bits - 1)), qmax: 2 ** (bits - 1) - 1 });
/** Unsigned affine activations: [0, 2^b - 1] (quint8 for b = 8). */
export const activationRange = (bits: number): QRange => ({ qmin: 0, qmax: 2 ** bits - 1 });

/**
 * Fake quantization with a straight-through estimator: y = (clamp(round(x / s) + z, qmin, qmax) - z) * s,
 * the gradient dy passes where round(x / s) + z lies inside [qmin, qmax] and is zero outside (as PyTorch's
 * fake_quantize backward). `scale` and `zeroPoint` broadcast against x: scalars for per-tensor, shaped
 * [1, ..., C] (or [..., C, 1] for depthwise kernels) for per-channel. Rounding is half-to-even, as
 * std::nearbyint; x is multiplied by 1/s as PyTorch does, so ties fall the same way.
 */
export function fakeQuantize(x: tf.Tensor, scale: tf.Tensor, zeroPoint: tf.Tensor, r: QRange): tf.Tensor {
  const f = tf.customGrad(((xx: tf.Tensor, s: tf.Tensor, z: tf.Tensor, save: tf.GradSaveFunc) => {
    const q = tf.add(tf.round(tf.mul(xx, tf.div(1, s))), z);
    const inside = tf.logicalAnd(tf.greaterEqual(q, r.qmin), tf.lessEqual(q, r.qmax));
    save([inside]);
    const value = tf.mul(tf.sub(tf.clipByValue(q, r.qmin, r.qmax), z), s);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        tf.where(saved[0] as tf.Tensor, dy, tf.zerosLike(dy)),
        tf.zerosLike(s),
        tf.zerosLike(z),
      ],
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (f as unknown as (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor)(x, scale, zeroPoint);
}

/** The integers of a quantized tensor: clamp(round(x / s) + z, qmin, qmax). */
export function quantizeInts(x: tf.Tensor, scale: tf.Tensor, zeroPoint: tf.Tensor, r: QRange): tf.Tensor {
  return tf.tidy(() => tf.clipByValue(tf.add(tf.round(tf.mul(x, tf.div(1, scale))), zeroPoint), r.qmin, r.qmax));
}

/**
 * Affine (asymmetric) qparams from a range, as PyTorch's _calculate_qparams for per_tensor_affine:
 * the range is widened to contain 0, scale = (max - min) / (qmax - qmin) (at least eps),
 * zero_point = clamp(qmin - round(min / scale), qmin, qmax). Works on scalars or per-channel vectors.
 */
export function affineQParams(min: tf.Tensor, max: tf.Tensor, r: QRange): { scale: tf.Tensor; zeroPoint: tf.Tensor } {
  return tf.tidy(() => {
    const lo = tf.minimum(min, 0);
    const hi = tf.maximum(max, 0);
    const scale = tf.maximum(tf.div(tf.sub(hi, lo), r.qmax - r.qmin), SCALE_EPS);
    const zeroPoint = tf.clipByValue(tf.sub(r.qmin, tf.round(tf.div(lo, scale))), r.qmin, r.qmax);
    return { scale, zeroPoint };
  });
}

/**
 * Symmetric qparams, as PyTorch's per_channel_symmetric / per_tensor_symmetric with a signed range:
 * scale = max(-min, max) / ((qmax - qmin) / 2) (at least eps), zero_point = 0.
 */
export function symmetricQParams(min: tf.Tensor, max: tf.Tensor, r: QRange): { scale: tf.Tensor; zeroPoint: tf.Tensor } {
  return tf.tidy(() => {
    const amax = tf.maximum(tf.neg(tf.minimum(min, 0)), tf.maximum(max, 0));
    const scale = tf.maximum(tf.div(amax, (r.qmax - r.qmin) / 2), SCALE_EPS);
    return { scale, zeroPoint: tf.zerosLike(scale) };
  });
}

/** Which axes of a kernel hold its output channels: the last one (conv, dense), or the last two (depthwise [k,k,C,mult]). */
export function channelAxes(className: string, rank: number): number[] {
  return className === 'DepthwiseConv2D' ? [rank - 2, rank - 1] : [rank - 1];
}

/**
 * Per-channel (or per-tensor) symmetric qparams of a kernel, shaped to broadcast against it:
 * per-channel reduces over every axis but the output-channel axes.
 */
export function weightQParams(
  kernel: tf.Tensor,
  className: string,
  perChannel: boolean,
  r: QRange,
): { scale: tf.Tensor; zeroPoint: tf.Tensor } {
  return tf.tidy(() => {
    const keep = channelAxes(className, kernel.rank);
    const axes = perChannel ? kernel.shape.map((_, i) => i).filter((i) => !keep.includes(i)) : kernel.shape.map((_, i) => i);
    return symmetricQParams(tf.min(kernel, axes, true), tf.max(kernel, axes, true), r);
  });
}

/** What an int8 export needs about one quantized layer (keyed by layer name in a model's metadata). */
export interface LayerQuantization {
  /** Affine uint8 qparams of the layer's input. */
  input?: { scale: number; zeroPoint: number; qmin: number; qmax: number };
  /** Symmetric int8 qparams of the kernel: one scale per output channel (or one for per-tensor). */
  weight: { scale: number[]; qmin: number; qmax: number; perChannel: boolean };
}

export type ModelQuantization = Record<string, LayerQuantization>;
