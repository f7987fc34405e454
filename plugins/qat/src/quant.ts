/**
 * QAT's own quantization pieces, over the shared arithmetic of @tricks/helper-quant: weight fake quantization
 * (PyTorch 1.13's fake_quantize_per_channel_affine with PerChannelMinMaxObserver's symmetric qparams) and the
 * moving-average min/max observer of the activations (MovingAverageMinMaxObserver).
 */
import * as tf from '@tensorflow/tfjs-core';
import { affineQParams, fakeQuantize, weightQParams, type QRange } from '@tricks/helper-quant';

/** Weight fake quantization: symmetric, per output channel unless perChannel is false. */
export function fakeQuantizeWeight(kernel: tf.Tensor, className: string, perChannel: boolean, r: QRange): tf.Tensor {
  return tf.tidy(() => {
    const { scale, zeroPoint } = weightQParams(kernel, className, perChannel, r);
    return fakeQuantize(kernel, scale, zeroPoint, r);
  });
}

/**
 * A moving-average min/max observer (PyTorch's MovingAverageMinMaxObserver, averaging constant 0.01):
 * the first batch sets the range, later ones move it by c * (batch - range). State lives in two
 * non-trainable variables; `observe` runs inside a step's tidy.
 */
export class MinMaxObserver {
  readonly min: tf.Variable;
  readonly max: tf.Variable;
  count = 0;

  constructor(
    readonly name: string,
    readonly averagingConstant = 0.01,
  ) {
    this.min = tf.variable(tf.scalar(0), false);
    this.max = tf.variable(tf.scalar(0), false);
  }

  observe(x: tf.Tensor): void {
    tf.tidy(() => {
      const lo = tf.min(x);
      const hi = tf.max(x);
      const c = this.averagingConstant;
      this.min.assign(this.count === 0 ? lo : tf.add(this.min, tf.mul(tf.sub(lo, this.min), c)));
      this.max.assign(this.count === 0 ? hi : tf.add(this.max, tf.mul(tf.sub(hi, this.max), c)));
    });
    this.count++;
  }

  qparams(r: QRange): { scale: tf.Tensor; zeroPoint: tf.Tensor } {
    return affineQParams(this.min, this.max, r);
  }

  /** scale and zero point as numbers (host side). */
  qparamsSync(r: QRange): { scale: number; zeroPoint: number } {
    const { scale, zeroPoint } = this.qparams(r);
    const out = { scale: scale.dataSync()[0], zeroPoint: zeroPoint.dataSync()[0] };
    tf.dispose([scale, zeroPoint]);
    return out;
  }

  dispose(): void {
    tf.dispose([this.min, this.max]);
  }
}
