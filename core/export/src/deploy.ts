/**
 * The deploy rewrite: the inference graph of a trained model rebuilt for use outside tricks (the training model
 * itself is left as it is, for eval and resume).
 * - Layers that are the identity at inference (StochasticDepth, Dropout, noise) are dropped.
 * - With `stock`, the zoo's custom layers become stock tfjs-layers classes, with the same weights: h-swish as
 *   x * ReLU6(x + 3) / 6 (Rescaling, ReLU(maxValue 6), Rescaling, Multiply), h-sigmoid as ReLU6(x + 3) / 6,
 *   the grouped conv of ResNeXt as one DepthwiseConv2D (channel multiplier filters/groups) whose products are
 *   summed per group by an AveragePooling2D over a Reshape (kernel scaled by the group size, so the mean is the
 *   sum), Swin's patch merging as Reshape + Permute + Reshape. Only WindowAttention has no stock form.
 * - With preprocessing, a first layer maps 0-255 RGB pixels to what the network was trained on: one 1x1
 *   DepthwiseConv2D (x * scale[c] + offset[c]), or for a grayscale network a 1x1 Conv2D from RGB to one channel.
 * - With probabilities, a softmax at the end.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { TricksError } from '@tricks/core';
import { layerGraph } from '@tricks/models';
import { CUSTOM_LAYERS } from '@tricks/models/runtime';

/** The layer that maps pixels to the network's input; its weights stay float32 in every format. */
export const PREPROCESS_LAYER = 'tricks_preprocess';
export const SOFTMAX_LAYER = 'tricks_probabilities';
/** ITU-R BT.601 luma, as PIL's convert('L') and torchvision's Grayscale. */
export const GRAY_WEIGHTS = [0.299, 0.587, 0.114];

/** Layers that compute the identity at inference. */
const INFERENCE_IDENTITY = new Set([
  'StochasticDepth',
  'Dropout',
  'SpatialDropout1D',
  'SpatialDropout2D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
]);

export interface DeployPlan {
  /** Rewrite the custom layers into stock ones (tfjs formats); ONNX keeps them, it has native ops for them. */
  stock: boolean;
  /** 'pixels': prepend the preprocessing; 'normalized': the bare network's input. */
  input: 'pixels' | 'normalized';
  /** Per channel of the network's input: x' = x * scale + offset from 0-255 values. */
  preprocessing: { scale: number[]; offset: number[] };
  /** A one-channel network fed RGB: gray = weights . (r, g, b) before the preprocessing. */
  gray?: { weights: number[] };
  output: 'logits' | 'probabilities';
}

export interface Deployed {
  model: LayersModel;
  /** How many layers of each class were rewritten or dropped. */
  rewritten: Record<string, number>;
  /** Custom (non-stock) layer classes the model still has. */
  customLayers: string[];
}

type Cfg = Record<string, unknown>;
type Weights = [tfl.layers.Layer, () => tf.Tensor[]][];

const clone = (layer: tfl.layers.Layer): tfl.layers.Layer => {
  const cls = layer.constructor as unknown as tf.serialization.SerializableConstructor<tfl.layers.Layer>;
  return (cls as unknown as { fromConfig: (c: unknown, cfg: Cfg) => tfl.layers.Layer }).fromConfig(cls, layer.getConfig() as Cfg);
};

/** x * relu6(x + 3) / 6, or relu6(x + 3) / 6 (gate), from stock layers. */
function hardSwish(x: SymbolicTensor, name: string, gate: boolean): SymbolicTensor {
  const a = tfl.layers.rescaling({ scale: 1, offset: 3, name: `${name}_plus3` }).apply(x) as SymbolicTensor;
  const r = tfl.layers.reLU({ maxValue: 6, name: `${name}_relu6` }).apply(a) as SymbolicTensor;
  const g = tfl.layers.rescaling({ scale: 1 / 6, name: gate ? name : `${name}_div6` }).apply(r) as SymbolicTensor;
  return gate ? g : (tfl.layers.multiply({ name }).apply([x, g]) as SymbolicTensor);
}

/**
 * GroupedConv2D (kernel [k,k,Cin,F/G]) as DepthwiseConv2D(depthMultiplier F/G): its output channel i*m+j is the
 * product of input channel i with kernel[:,:,i,j]; the Reshape to [H*W*G, Cin/G, m] and an average pool over
 * the Cin/G products of a group give the group sums (the kernel times Cin/G, so the mean is the sum).
 */
function groupedConv(layer: tfl.layers.Layer, x: SymbolicTensor, weights: Weights): SymbolicTensor {
  const cfg = layer.getConfig() as Cfg;
  const name = layer.name;
  const groups = Number(cfg.groups);
  const filters = Number(cfg.filters);
  const kernelSize = Number(cfg.kernelSize);
  const strides = Number(cfg.strides ?? 1);
  const [, h, w, cin] = x.shape as number[];
  const m = filters / groups;
  const cg = cin / groups;
  const padding = cfg.padding === 'valid' ? 'valid' : 'same';
  const size = (n: number) => (padding === 'same' ? Math.ceil(n / strides) : Math.floor((n - kernelSize) / strides) + 1);
  const ho = size(h);
  const wo = size(w);
  const useBias = Boolean(cfg.useBias);
  const dw = tfl.layers.depthwiseConv2d({ kernelSize, strides, padding, depthMultiplier: m, useBias, name: `${name}_dw` });
  let y = dw.apply(x) as SymbolicTensor;
  y = tfl.layers.reshape({ targetShape: [ho * wo * groups, cg, m], name: `${name}_groups` }).apply(y) as SymbolicTensor;
  y = tfl.layers
    .averagePooling2d({ poolSize: [1, cg], strides: [1, cg], padding: 'valid', name: `${name}_sum` })
    .apply(y) as SymbolicTensor;
  y = tfl.layers.reshape({ targetShape: [ho, wo, filters], name }).apply(y) as SymbolicTensor;
  weights.push([
    dw,
    () => {
      const [kernel, bias] = layer.getWeights();
      const k = tf.mul(kernel, cg);
      // bias of output g*m+j on each of its cg products: the mean of cg equal biases is the bias
      if (!useBias) return [k];
      const b = tf.reshape(tf.tile(tf.reshape(bias, [groups, 1, m]), [1, cg, 1]), [cin * m]);
      return [k, b];
    },
  ]);
  return y;
}

/** Swin's PatchMerge: pad odd sides, [H,W,C] -> [H/2,2,W/2,2,C] -> [H/2,W/2,dx,dy,C] -> [H/2,W/2,4C]. */
function patchMerge(x: SymbolicTensor, name: string): SymbolicTensor {
  const [, h, w, c] = x.shape as number[];
  if (h % 2 || w % 2)
    x = tfl.layers
      .zeroPadding2d({
        padding: [
          [0, h % 2],
          [0, w % 2],
        ],
        name: `${name}_pad`,
      })
      .apply(x) as SymbolicTensor;
  const h2 = Math.ceil(h / 2),
    w2 = Math.ceil(w / 2);
  let y = tfl.layers.reshape({ targetShape: [h2, 2, w2, 2, c], name: `${name}_split` }).apply(x) as SymbolicTensor;
  y = tfl.layers.permute({ dims: [1, 3, 4, 2, 5], name: `${name}_permute` }).apply(y) as SymbolicTensor;
  return tfl.layers.reshape({ targetShape: [h2, w2, 4 * c], name }).apply(y) as SymbolicTensor;
}

/** The preprocessing as a first layer over 0-255 pixels: 1x1 depthwise (per channel), or 1x1 conv RGB -> gray. */
function preprocess(x: SymbolicTensor, plan: DeployPlan, channels: number, weights: Weights): SymbolicTensor {
  const { scale, offset } = plan.preprocessing;
  if (scale.length !== channels || offset.length !== channels)
    throw new TricksError(
      `export: the preprocessing has ${scale.length} scales for a network of ${channels} channels`,
      'the evaluation transform of the run does not fit the model',
    );
  if (plan.gray) {
    const layer = tfl.layers.conv2d({ filters: 1, kernelSize: 1, useBias: true, name: PREPROCESS_LAYER });
    const y = layer.apply(x) as SymbolicTensor;
    const gw = plan.gray.weights;
    weights.push([
      layer,
      () => [
        tf.tensor4d(
          gw.map((v) => v * scale[0]),
          [1, 1, 3, 1],
        ),
        tf.tensor1d(offset),
      ],
    ]);
    return y;
  }
  const layer = tfl.layers.depthwiseConv2d({ kernelSize: 1, depthMultiplier: 1, useBias: true, name: PREPROCESS_LAYER });
  const y = layer.apply(x) as SymbolicTensor;
  weights.push([layer, () => [tf.tensor4d(scale, [1, 1, channels, 1]), tf.tensor1d(offset)]]);
  return y;
}

/**
 * A new model with the deploy rewrite of `model` (see the file's comment); the original is not changed. Layer
 * names are kept (a quantization grid keyed by them still applies); the layers a rewrite adds are named after the
 * layer they replace. The result computes the inference-mode function of the original.
 */
export function deployModel(model: LayersModel, plan: DeployPlan): Deployed {
  if (model.inputs.length !== 1 || model.outputs.length !== 1)
    throw new TricksError('export: the model must have one input and one output', 'export a single-input classifier');
  const g = layerGraph(model);
  const shape = model.inputs[0].shape.slice(1) as number[];
  if (shape.some((d) => d == null))
    throw new TricksError(`export: the model's input ${JSON.stringify(shape)} has no fixed size`, 'build the model with an input size');
  const channels = shape[2];
  if (plan.gray && channels !== 1)
    throw new TricksError(`export: a gray conversion for a network of ${channels} channels`, 'gray is for one-channel networks');
  const pixels = plan.input === 'pixels';
  const input = tfl.input({
    shape: [shape[0], shape[1], pixels && plan.gray ? 3 : channels],
    name: pixels ? 'pixels' : model.inputLayers[0].name,
  });
  const weights: Weights = [];
  const rewritten: Record<string, number> = {};
  const count = (cls: string) => (rewritten[cls] = (rewritten[cls] ?? 0) + 1);
  const out = new Map<string, SymbolicTensor>();
  out.set(model.inputLayers[0].name, pixels ? preprocess(input, plan, channels, weights) : input);
  for (const n of g.values()) {
    if (n.className === 'InputLayer') continue;
    const ins = n.inputs.map((i) => out.get(i)!);
    const x = ins[0];
    let y: SymbolicTensor;
    if (INFERENCE_IDENTITY.has(n.className)) {
      y = x;
      count(n.className);
    } else if (plan.stock && n.className === 'HardSwish') {
      y = hardSwish(x, n.name, false);
      count(n.className);
    } else if (plan.stock && n.className === 'HardSigmoid6') {
      y = hardSwish(x, n.name, true);
      count(n.className);
    } else if (plan.stock && n.className === 'GroupedConv2D') {
      y = groupedConv(n.layer, x, weights);
      count(n.className);
    } else if (plan.stock && n.className === 'PatchMerge') {
      y = patchMerge(x, n.name);
      count(n.className);
    } else {
      const c = clone(n.layer);
      y = c.apply(ins.length === 1 ? x : ins) as SymbolicTensor;
      const layer = n.layer;
      if (layer.weights.length) weights.push([c, () => layer.getWeights()]);
    }
    out.set(n.name, y);
  }
  let y = out.get(model.outputLayers[0].name)!;
  if (plan.output === 'probabilities') y = tfl.layers.activation({ activation: 'softmax', name: SOFTMAX_LAYER }).apply(y) as SymbolicTensor;
  const deployed = tfl.model({ inputs: input, outputs: y, name: model.name });
  for (const [layer, get] of weights) {
    const t = tf.tidy(get);
    layer.setWeights(t);
    // setWeights assigns: the variables keep the values; our fresh tensors can go (a source model's own stay)
    tf.dispose(t.filter((v) => !model.weights.some((w) => w.read() === v)));
  }
  const customLayers = [...new Set(deployed.layers.map((l) => l.getClassName()).filter((c) => CUSTOM_LAYERS.includes(c)))];
  return { model: deployed, rewritten, customLayers };
}
