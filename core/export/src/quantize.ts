/**
 * Integer quantization of a trained model for export: BN folded into the layer before it, kernels put on a
 * symmetric int8 grid (per output channel by default), uint8 affine qparams for each quantized layer's input.
 * QAT passes the ranges its observers learned; post-training quantization calibrates them on training batches.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { foldBatchNorm, type FoldPair } from './fold.js';
import { activationRange, affineQParams, fakeQuantize, weightQParams, weightRange, type ModelQuantization } from '@tricks/helper-quant';

/** Layers whose kernels and inputs are quantized. */
export const QUANTIZED_LAYERS = new Set(['Conv2D', 'DepthwiseConv2D', 'Dense']);

export interface QuantizeOptions {
  bits: number;
  perChannel: boolean;
  /** Observed input range of each quantized layer (by name); layers without one keep a float input. */
  inputRanges: Record<string, { min: number; max: number }>;
  pairs?: FoldPair[];
}

/**
 * Folds BN, puts every conv/dense kernel on its int8 grid (the folded model keeps float32 weights whose values
 * are exactly scale * integer) and returns the grid: scales per layer and input qparams, for the ONNX QDQ
 * writer and for the model's metadata.
 */
export async function quantizeModel(
  model: LayersModel,
  opts: QuantizeOptions,
): Promise<{ model: LayersModel; quantization: ModelQuantization; pairs: FoldPair[] }> {
  const wr = weightRange(opts.bits);
  const ar = activationRange(opts.bits);
  const quantization: ModelQuantization = {};
  const { model: folded, pairs } = await foldBatchNorm(model, {
    pairs: opts.pairs,
    transformKernel: (layer, cls, kernel) => {
      if (!QUANTIZED_LAYERS.has(cls)) return tf.clone(kernel);
      return tf.tidy(() => {
        const { scale, zeroPoint } = weightQParams(kernel, cls, opts.perChannel, wr);
        const entry: ModelQuantization[string] = {
          weight: { scale: Array.from(scale.dataSync()), qmin: wr.qmin, qmax: wr.qmax, perChannel: opts.perChannel },
        };
        const r = opts.inputRanges[layer];
        if (r) {
          const q = affineQParams(tf.scalar(r.min), tf.scalar(r.max), ar);
          entry.input = { scale: q.scale.dataSync()[0], zeroPoint: q.zeroPoint.dataSync()[0], qmin: ar.qmin, qmax: ar.qmax };
        }
        quantization[layer] = entry;
        return fakeQuantize(kernel, scale, zeroPoint, wr);
      });
    },
  });
  return { model: folded, quantization, pairs };
}

/**
 * Post-training calibration: the min and max of each quantized layer's input over the given batches
 * (PyTorch's MinMaxObserver, the default for static post-training quantization).
 */
export function calibrateInputRanges(model: LayersModel, batches: Iterable<tf.Tensor4D>): Record<string, { min: number; max: number }> {
  const layers = model.layers.filter((l) => QUANTIZED_LAYERS.has(l.getClassName()));
  // one probe output per distinct tensor (a block output can feed a conv and a projection shortcut)
  const tensors: tfl.SymbolicTensor[] = [];
  const slot = layers.map((l) => {
    const t = l.inboundNodes[0].inputTensors[0];
    let i = tensors.indexOf(t);
    if (i < 0) i = tensors.push(t) - 1;
    return i;
  });
  const probe = tfl.model({ inputs: model.inputs, outputs: tensors });
  const ranges: Record<string, { min: number; max: number }> = {};
  for (const x of batches) {
    const mm = tf.tidy(() => {
      const outs = probe.predict(x) as tf.Tensor | tf.Tensor[];
      return tf.stack((Array.isArray(outs) ? outs : [outs]).map((o) => tf.stack([tf.min(o), tf.max(o)])));
    });
    const v = mm.dataSync();
    mm.dispose();
    layers.forEach((l, i) => {
      const r = (ranges[l.name] ??= { min: Infinity, max: -Infinity });
      r.min = Math.min(r.min, v[2 * slot[i]]);
      r.max = Math.max(r.max, v[2 * slot[i] + 1]);
    });
  }
  return ranges;
}
