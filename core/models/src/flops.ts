import type { LayersModel } from '@tensorflow/tfjs-layers';
import type * as tfl from '@tensorflow/tfjs-layers';

type Shape = (number | null)[];

export interface LayerCost {
  name: string;
  className: string;
  outputShape: Shape;
  params: number;
  /** Multiply-accumulates for one image. */
  macs: number;
}

export interface ModelCost {
  layers: LayerCost[];
  /** Trainable parameters (BatchNorm moving statistics excluded, as PyTorch counts). */
  params: number;
  nonTrainable: number;
  /** Multiply-accumulates for one image over conv, depthwise, grouped conv, dense and attention matmuls. */
  macs: number;
}

const prod = (xs: (number | null)[]) => xs.reduce<number>((a, b) => a * (b ?? 1), 1);
const oneShape = (s: Shape | Shape[]): Shape => (Array.isArray(s[0]) ? (s[0] as Shape) : (s as Shape));

/**
 * Multiply-accumulates of one layer for one image (the convention torchvision's "GFLOPS" column uses: one
 * multiply-add counts once). Counted: Conv2D, DepthwiseConv2D, GroupedConv2D, Dense (on any rank), and
 * WindowAttention (qkv and output projections plus the two attention matmuls, over the padded map).
 * Not counted: BatchNorm, LayerNorm, activations, pooling, adds, softmax, the SE gate's multiply.
 */
export function layerMacs(layer: tfl.layers.Layer): number {
  const cls = layer.getClassName();
  const cfg = layer.getConfig() as Record<string, unknown>;
  const inShape = layer.inboundNodes[0].inputTensors[0].shape;
  const outShape = oneShape(layer.outputShape as Shape | Shape[]);
  const k = (v: unknown) => (Array.isArray(v) ? (v as number[]) : [v as number, v as number]);
  const cin = inShape.at(-1) as number;
  const spatialOut = prod(outShape.slice(1, -1));
  switch (cls) {
    case 'Conv2D': {
      const [kh, kw] = k(cfg.kernelSize);
      return spatialOut * (outShape.at(-1) as number) * kh * kw * cin;
    }
    case 'DepthwiseConv2D': {
      const [kh, kw] = k(cfg.kernelSize);
      return spatialOut * (outShape.at(-1) as number) * kh * kw;
    }
    case 'GroupedConv2D': {
      const kk = (cfg.kernelSize as number) ** 2;
      return spatialOut * (outShape.at(-1) as number) * kk * (cin / (cfg.groups as number));
    }
    case 'Dense':
      return spatialOut * (cfg.units as number) * cin;
    case 'WindowAttention': {
      const ws = cfg.windowSize as number;
      const [h, w] = [inShape[1] as number, inShape[2] as number];
      const tokens = Math.ceil(h / ws) * ws * Math.ceil(w / ws) * ws;
      const n = ws * ws;
      return tokens * cin * 3 * cin + 2 * tokens * n * cin + tokens * cin * cin;
    }
    default:
      return 0;
  }
}

/** Per-layer parameters and multiply-accumulates of a built model, for one image of its input size. */
export function modelCost(model: LayersModel): ModelCost {
  const layers: LayerCost[] = [];
  let params = 0;
  let macs = 0;
  for (const layer of model.layers) {
    const p = layer.trainableWeights.reduce((n, w) => n + prod(w.shape), 0);
    const m = layer.getClassName() === 'InputLayer' ? 0 : layerMacs(layer);
    layers.push({
      name: layer.name,
      className: layer.getClassName(),
      outputShape: oneShape(layer.outputShape as Shape | Shape[]),
      params: p,
      macs: m,
    });
    params += p;
    macs += m;
  }
  const nonTrainable = model.nonTrainableWeights.reduce((n, w) => n + prod(w.shape), 0);
  return { layers, params, nonTrainable, macs };
}

/** Trainable parameters, counted as PyTorch counts them (BN moving statistics are buffers, not parameters). */
export function countParams(model: LayersModel): number {
  return model.trainableWeights.reduce((n, w) => n + prod(w.shape), 0);
}
