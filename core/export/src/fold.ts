/** BatchNorm folding: BN after a conv, depthwise conv or dense becomes that layer's kernel scale and bias. */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { layerGraph, modelFromParts, modelTopology, removeLayer, topoLayer, weightOf } from '@tricks/models';

export const FOLDABLE = new Set(['Conv2D', 'DepthwiseConv2D', 'Dense']);

export interface FoldPair {
  conv: string;
  bn: string;
}

/** (layer, BN) pairs where the BN's only input is a linear conv/depthwise/dense whose only consumer is that BN. */
export function foldablePairs(model: LayersModel): FoldPair[] {
  const g = layerGraph(model);
  const pairs: FoldPair[] = [];
  for (const n of g.values()) {
    if (n.className !== 'BatchNormalization' || n.inputs.length !== 1) continue;
    const prev = g.get(n.inputs[0])!;
    const cfg = prev.layer.getConfig() as Record<string, unknown>;
    const axis = Number((n.layer.getConfig() as Record<string, unknown>).axis);
    const rank = n.layer.inboundNodes[0].inputTensors[0].shape.length;
    if (!FOLDABLE.has(prev.className) || prev.consumers.length !== 1 || (cfg.activation ?? 'linear') !== 'linear') continue;
    if (axis !== -1 && axis !== rank - 1) continue;
    if (prev.className === 'DepthwiseConv2D' && Number(cfg.depthMultiplier ?? 1) !== 1) continue;
    pairs.push({ conv: prev.name, bn: n.name });
  }
  return pairs;
}

/** gamma / sqrt(moving_variance + epsilon): the per-channel factor BN applies in inference. */
export function bnScale(bn: tfl.layers.Layer): tf.Tensor1D {
  return tf.tidy(() => {
    const eps = Number((bn.getConfig() as Record<string, unknown>).epsilon);
    const v = weightOf(bn, 'moving_variance')!.read();
    const gamma = weightOf(bn, 'gamma')?.read() ?? tf.onesLike(v);
    return tf.div(gamma, tf.sqrt(tf.add(v, eps))) as tf.Tensor1D;
  });
}

/** A kernel times a per-output-channel factor (depthwise kernels [k,k,C,1] scale along C). */
export function scaleKernel(kernel: tf.Tensor, className: string, s: tf.Tensor1D): tf.Tensor {
  return tf.tidy(() => (className === 'DepthwiseConv2D' ? tf.mul(kernel, tf.reshape(s, [1, 1, -1, 1])) : tf.mul(kernel, s)));
}

/** The folded kernel and bias of one pair: W*s and (b - mean)*s + beta. */
export function foldPair(conv: tfl.layers.Layer, bn: tfl.layers.Layer): { kernel: tf.Tensor; bias: tf.Tensor1D } {
  return tf.tidy(() => {
    const cls = conv.getClassName();
    const kernel = weightOf(conv, cls === 'DepthwiseConv2D' ? 'depthwise_kernel' : 'kernel')!.read();
    const s = bnScale(bn);
    const mean = weightOf(bn, 'moving_mean')!.read();
    const beta = weightOf(bn, 'beta')?.read() ?? tf.zerosLike(mean);
    const b = weightOf(conv, 'bias')?.read() ?? tf.zerosLike(mean);
    return { kernel: scaleKernel(kernel, cls, s), bias: tf.add(tf.mul(tf.sub(b, mean), s), beta) as tf.Tensor1D };
  });
}

/**
 * A new model with every foldable BatchNorm folded into the layer before it (which gains a bias). The result
 * computes the inference-mode function of the original, with fewer layers; its weights are fresh tensors.
 * `transformKernel` may rewrite each folded (or plain) conv/dense kernel, e.g. put it on a quantization grid.
 */
export async function foldBatchNorm(
  model: LayersModel,
  opts: { pairs?: FoldPair[]; transformKernel?: (layer: string, className: string, kernel: tf.Tensor) => tf.Tensor } = {},
): Promise<{ model: LayersModel; pairs: FoldPair[] }> {
  const pairs = opts.pairs ?? foldablePairs(model);
  const topo = modelTopology(model);
  const weights = new Map<string, tf.Tensor>();
  const folded = new Map(pairs.map((p) => [p.conv, p.bn]));
  const bns = new Set(pairs.map((p) => p.bn));
  try {
    for (const layer of model.layers) {
      if (bns.has(layer.name)) continue;
      const cls = layer.getClassName();
      const kname = cls === 'DepthwiseConv2D' ? 'depthwise_kernel' : 'kernel';
      const bn = folded.get(layer.name);
      let kernel: tf.Tensor | undefined;
      let bias: tf.Tensor | undefined;
      if (bn) {
        ({ kernel, bias } = foldPair(layer, model.getLayer(bn)));
        topoLayer(topo, layer.name).config.use_bias = true;
        weights.set(`${layer.name}/bias`, bias);
      }
      for (const w of layer.weights) {
        const short = w.originalName.slice(layer.name.length + 1);
        if (short === 'bias' && bias) continue;
        if (short === kname && FOLDABLE.has(cls)) {
          const k = kernel ?? tf.clone(w.read());
          if (opts.transformKernel) {
            weights.set(w.originalName, opts.transformKernel(layer.name, cls, k));
            k.dispose();
          } else weights.set(w.originalName, k);
        } else weights.set(w.originalName, tf.clone(w.read()));
      }
    }
    for (const p of pairs) removeLayer(topo, p.bn);
    const out = await modelFromParts(topo, weights, model.getUserDefinedMetadata() as Record<string, unknown> | undefined);
    return { model: out, pairs };
  } finally {
    tf.dispose([...weights.values()]);
  }
}
