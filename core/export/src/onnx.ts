/**
 * LayersModel -> ONNX (opset 14), written with onnx-proto (the official onnx.proto compiled by protobufjs).
 * The graph takes NHWC float32 input like the tfjs model, transposes once to NCHW and runs the convs there.
 * With a quantization map (from qat, or post-training calibration) each quantized conv/dense gets QDQ:
 * QuantizeLinear/DequantizeLinear (uint8, per tensor) on its input and int8 weights with per-channel
 * DequantizeLinear: the same grid the fake quantization used.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import onnxProto from 'onnx-proto';
import { TricksError } from '@tricks/core';
import { layerGraph, weightOf } from '@tricks/models';
import type { ModelQuantization } from '@tricks/helper-quant';

const { onnx } = onnxProto;
const DT = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;
const AT = { FLOAT: 1, INT: 2, INTS: 7 } as const;
type Shape = (number | null)[];

export const ONNX_OPSET = 14;

export interface OnnxExportOptions {
  quantization?: ModelQuantization;
  /** Name of the graph. */
  name?: string;
  /** ModelProto metadata_props (e.g. tricks.inference). */
  metadata?: Record<string, string>;
}

interface Val {
  name: string;
  /** 'nchw' for rank-4 maps (transposed from tfjs's NHWC), 'flat' for [N, C]. */
  layout: 'nchw' | 'flat';
}

const bytes = (a: Float32Array | Int8Array | Uint8Array | BigInt64Array | Int32Array) =>
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** tfjs 'same' padding: total = max((ceil(in/s) - 1) * s + (k - 1) * d + 1 - in, 0), the extra pixel at the end. */
export function samePads(inHW: number[], k: number[], s: number[], d: number[]): number[] {
  const begin: number[] = [],
    end: number[] = [];
  inHW.forEach((n, i) => {
    const out = Math.ceil(n / s[i]);
    const total = Math.max((out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - n, 0);
    begin.push(Math.floor(total / 2));
    end.push(total - Math.floor(total / 2));
  });
  return [...begin, ...end];
}

/** The ONNX ModelProto bytes of a LayersModel. Throws a TricksError naming a layer it cannot convert. */
export function toOnnx(model: LayersModel, opts: OnnxExportOptions = {}): Uint8Array {
  const nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  const inits: InstanceType<typeof onnx.TensorProto>[] = [];
  const vals = new Map<string, Val>();
  let uid = 0;
  const fresh = (base: string) => `${base}__${uid++}`;
  const attr = (name: string, v: number | number[], float = false) =>
    Array.isArray(v) ? { name, type: AT.INTS, ints: v } : float ? { name, type: AT.FLOAT, f: v } : { name, type: AT.INT, i: v };
  const node = (opType: string, input: string[], name: string, attribute: ReturnType<typeof attr>[] = [], output = [fresh(name)]) => {
    nodes.push(onnx.NodeProto.create({ opType, input, output, name: fresh(name), attribute }));
    return output[0];
  };
  const init = (name: string, dims: number[], dataType: number, raw: Uint8Array) => {
    inits.push(onnx.TensorProto.create({ name, dims, dataType, rawData: raw }));
    return name;
  };
  const f32 = (name: string, dims: number[], v: ArrayLike<number>) => init(fresh(name), dims, DT.FLOAT, bytes(Float32Array.from(v)));
  const i64 = (name: string, v: number[]) => init(fresh(name), [v.length], DT.INT64, bytes(BigInt64Array.from(v.map(BigInt))));
  const quant = opts.quantization ?? {};
  const shapeOf = (s: Shape | Shape[]) => (Array.isArray(s[0]) ? s[0] : s) as Shape;

  const graph = layerGraph(model);
  const inputLayer = model.inputLayers[0];
  const inShape = shapeOf(inputLayer.outputShape as Shape);
  const unsupported = (layer: string, cls: string, why = '') => {
    throw new TricksError(
      `ONNX export: layer ${layer} (${cls}) cannot be converted${why ? `: ${why}` : ''}`,
      'export this model as tfjs, or replace the layer',
    );
  };

  const activation = (x: string, act: string, layer: string, layout: Val['layout']): string => {
    switch (act) {
      case 'linear':
        return x;
      case 'relu':
        return node('Relu', [x], layer);
      case 'relu6':
        return node('Clip', [x, f32('zero', [], [0]), f32('six', [], [6])], layer);
      case 'sigmoid':
        return node('Sigmoid', [x], layer);
      case 'tanh':
        return node('Tanh', [x], layer);
      case 'elu':
        return node('Elu', [x], layer);
      case 'selu':
        return node('Selu', [x], layer);
      case 'softplus':
        return node('Softplus', [x], layer);
      case 'softsign':
        return node('Softsign', [x], layer);
      case 'hardSigmoid':
        return node('HardSigmoid', [x], layer, [attr('alpha', 0.2, true), attr('beta', 0.5, true)]);
      case 'swish':
        return node('Mul', [x, node('Sigmoid', [x], layer)], layer);
      case 'softmax':
        return node('Softmax', [x], layer, [attr('axis', layout === 'nchw' ? 1 : -1)]);
      default:
        return unsupported(layer, `activation ${act}`);
    }
  };

  /** Input QDQ for a quantized layer. */
  const qdqInput = (x: string, layer: string): string => {
    const q = quant[layer]?.input;
    if (!q) return x;
    if (q.qmin !== 0 || q.qmax > 255) unsupported(layer, 'quantized input', `range [${q.qmin}, ${q.qmax}] is not uint8`);
    const s = f32(`${layer}_in_scale`, [], [q.scale]);
    const z = init(fresh(`${layer}_in_zp`), [], DT.UINT8, Uint8Array.of(q.zeroPoint));
    return node('DequantizeLinear', [node('QuantizeLinear', [x, s, z], `${layer}_q`), s, z], `${layer}_dq`);
  };

  /** A weight initializer in ONNX layout; int8 + per-channel DequantizeLinear when the layer is quantized. */
  const weight = (layer: string, tfjsKernel: tf.Tensor, toOnnxLayout: (t: tf.Tensor) => tf.Tensor, axis: number): string => {
    const q = quant[layer]?.weight;
    if (!q)
      return tf.tidy(() => {
        const t = toOnnxLayout(tfjsKernel);
        return f32(`${layer}_w`, t.shape, t.dataSync() as Float32Array);
      });
    return tf.tidy(() => {
      const c = q.scale.length;
      const sShape = tfjsKernel.shape.map((d, i) => (q.perChannel ? (i === tfjsKernel.rank - 1 ? (c === d ? d : 1) : 1) : 1));
      let scale = tf.tensor(q.scale);
      if (q.perChannel && tfjsKernel.shape.at(-1) !== c)
        sShape.splice(tfjsKernel.rank - 2, 2, tfjsKernel.shape.at(-2)!, tfjsKernel.shape.at(-1)!); // depthwise [1,1,C,mult]
      scale = tf.reshape(scale, q.perChannel ? sShape : []);
      const ints = tf.clipByValue(tf.round(tf.mul(tfjsKernel, tf.div(1, scale))), q.qmin, q.qmax);
      const t = toOnnxLayout(ints);
      const w = init(fresh(`${layer}_wq`), t.shape, DT.INT8, bytes(Int8Array.from(t.dataSync())));
      const s = f32(`${layer}_w_scale`, q.perChannel ? [c] : [], q.scale);
      const z = init(fresh(`${layer}_w_zp`), q.perChannel ? [c] : [], DT.INT8, new Uint8Array(q.perChannel ? c : 1));
      return node('DequantizeLinear', [w, s, z], `${layer}_wdq`, q.perChannel ? [attr('axis', axis)] : []);
    });
  };

  const input = 'input';
  vals.set(inputLayer.name, { name: node('Transpose', [input], 'to_nchw', [attr('perm', [0, 3, 1, 2])]), layout: 'nchw' });

  for (const n of graph.values()) {
    const { layer, className: cls, name } = n;
    if (cls === 'InputLayer') continue;
    const ins = n.inputs.map((i) => vals.get(i)!);
    const x = ins[0];
    const cfg = layer.getConfig() as Record<string, unknown>;
    const inputShape = shapeOf(layer.inboundNodes[0].inputTensors[0].shape as Shape);
    const pair = (v: unknown) => (Array.isArray(v) ? (v as number[]) : [v as number, v as number]);
    let out: Val;
    const conv = (w: string, b: string | undefined, k: number[], group: number): Val => {
      if (x.layout !== 'nchw') unsupported(name, cls, 'expects a 4-D input');
      const strides = pair(cfg.strides ?? 1);
      const dil = pair(cfg.dilationRate ?? 1);
      const padding = cls === 'GroupedConv2D' ? (cfg.padding ?? 'same') : cfg.padding; // saved before it had one: 'same'
      const pads = padding === 'same' ? samePads([inputShape[1]!, inputShape[2]!], k, strides, dil) : [0, 0, 0, 0];
      if (padding !== 'same' && padding !== 'valid') unsupported(name, cls, `padding ${padding}`);
      const y = node('Conv', [qdqInput(x.name, name), w, ...(b ? [b] : [])], name, [
        attr('kernel_shape', k),
        attr('strides', strides),
        attr('dilations', dil),
        attr('pads', pads),
        attr('group', group),
      ]);
      return { name: activation(y, String(cfg.activation ?? 'linear'), name, 'nchw'), layout: 'nchw' };
    };
    const biasOf = () => {
      const b = weightOf(layer, 'bias');
      return b ? f32(`${name}_b`, [b.shape[0] as number], b.read().dataSync()) : undefined;
    };
    switch (cls) {
      case 'Conv2D': {
        const k = weightOf(layer, 'kernel')!.read();
        const w = weight(name, k, (t) => tf.transpose(t, [3, 2, 0, 1]), 0);
        out = conv(w, biasOf(), k.shape.slice(0, 2), 1);
        break;
      }
      case 'DepthwiseConv2D': {
        const k = weightOf(layer, 'depthwise_kernel')!.read();
        const [kh, kw, c, m] = k.shape;
        const w = weight(name, k, (t) => tf.reshape(tf.transpose(t, [2, 3, 0, 1]), [c * m, 1, kh, kw]), 0);
        out = conv(w, biasOf(), [kh, kw], c);
        break;
      }
      case 'GroupedConv2D': {
        const k = weightOf(layer, 'kernel')!.read();
        const [kk, , cin, fg] = k.shape;
        const groups = Number(cfg.groups);
        const cg = cin / groups;
        // W[g*fg+m, j, :, :] = kernel[:, :, g*cg + j, m]
        const toLayout = (t: tf.Tensor) =>
          tf.reshape(tf.transpose(tf.reshape(t, [kk, kk, groups, cg, fg]), [2, 4, 3, 0, 1]), [groups * fg, cg, kk, kk]);
        if (quant[name]) unsupported(name, cls, 'quantized grouped convs are not supported');
        out = conv(weight(name, k, toLayout, 0), biasOf(), [kk, kk], groups);
        break;
      }
      case 'Dense': {
        if (x.layout !== 'flat') unsupported(name, cls, 'dense on a 4-D map');
        const k = weightOf(layer, 'kernel')!.read();
        const w = weight(name, k, (t) => tf.clone(t), 1);
        const units = k.shape[1] as number;
        const b = biasOf() ?? f32(`${name}_b0`, [units], new Float32Array(units));
        out = {
          name: activation(
            node('Add', [node('MatMul', [qdqInput(x.name, name), w], name), b], name),
            String(cfg.activation ?? 'linear'),
            name,
            'flat',
          ),
          layout: 'flat',
        };
        break;
      }
      case 'BatchNormalization': {
        const v = weightOf(layer, 'moving_variance')!.read();
        const c = v.shape[0] as number;
        const get = (s: string, fill: number) =>
          f32(`${name}_${s}`, [c], (weightOf(layer, s)?.read().dataSync() as Float32Array | undefined) ?? new Float32Array(c).fill(fill));
        out = {
          name: node(
            'BatchNormalization',
            [x.name, get('gamma', 1), get('beta', 0), get('moving_mean', 0), get('moving_variance', 1)],
            name,
            [attr('epsilon', Number(cfg.epsilon), true)],
          ),
          layout: x.layout,
        };
        break;
      }
      case 'ReLU': {
        const max = cfg.maxValue as number | null | undefined;
        out = {
          name: max != null ? node('Clip', [x.name, f32('zero', [], [0]), f32('max', [], [max])], name) : node('Relu', [x.name], name),
          layout: x.layout,
        };
        break;
      }
      case 'Activation':
        out = { name: activation(x.name, String(cfg.activation), name, x.layout), layout: x.layout };
        break;
      case 'HardSwish':
        out = { name: node('HardSwish', [x.name], name), layout: x.layout };
        break;
      case 'HardSigmoid6':
        out = { name: node('HardSigmoid', [x.name], name, [attr('alpha', 1 / 6, true), attr('beta', 0.5, true)]), layout: x.layout };
        break;
      case 'Dropout':
      case 'SpatialDropout2D':
      case 'StochasticDepth':
      case 'GaussianNoise':
      case 'GaussianDropout':
      case 'AlphaDropout':
        out = x;
        break;
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        const k = pair(cfg.poolSize);
        const s = pair(cfg.strides ?? cfg.poolSize);
        const pads = cfg.padding === 'same' ? samePads([inputShape[1]!, inputShape[2]!], k, s, [1, 1]) : [0, 0, 0, 0];
        out = {
          name: node(cls === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool', [x.name], name, [
            attr('kernel_shape', k),
            attr('strides', s),
            attr('pads', pads),
          ]),
          layout: 'nchw',
        };
        break;
      }
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D': {
        const p = node(cls === 'GlobalAveragePooling2D' ? 'GlobalAveragePool' : 'GlobalMaxPool', [x.name], name);
        out = cfg.keepDims ? { name: p, layout: 'nchw' } : { name: node('Flatten', [p], name, [attr('axis', 1)]), layout: 'flat' };
        break;
      }
      case 'Flatten':
        out = {
          name: node('Flatten', [x.layout === 'nchw' ? node('Transpose', [x.name], name, [attr('perm', [0, 2, 3, 1])]) : x.name], name, [
            attr('axis', 1),
          ]),
          layout: 'flat',
        };
        break;
      case 'Add':
      case 'Multiply':
      case 'Subtract':
      case 'Maximum':
      case 'Minimum':
      case 'Average': {
        const op = { Add: 'Add', Multiply: 'Mul', Subtract: 'Sub', Maximum: 'Max', Minimum: 'Min', Average: 'Sum' }[cls]!;
        if (ins.some((v) => v.layout !== x.layout)) unsupported(name, cls, 'inputs of different ranks');
        let y = ['Max', 'Min', 'Sum'].includes(op)
          ? node(
              op,
              ins.map((v) => v.name),
              name,
            )
          : ins.slice(1).reduce((a, v) => node(op, [a, v.name], name), x.name);
        if (cls === 'Average') y = node('Mul', [y, f32('inv_n', [], [1 / ins.length])], name);
        out = { name: y, layout: x.layout };
        break;
      }
      case 'Concatenate': {
        const rank = shapeOf(layer.outputShape as Shape).length;
        const axis = Number(cfg.axis);
        if (axis !== -1 && axis !== rank - 1) unsupported(name, cls, `axis ${axis}`);
        out = {
          name: node(
            'Concat',
            ins.map((v) => v.name),
            name,
            [attr('axis', 1)],
          ),
          layout: x.layout,
        };
        break;
      }
      case 'Reshape': {
        const t = cfg.targetShape as number[];
        if (x.layout === 'flat' && t.length === 3 && t[0] === 1 && t[1] === 1)
          out = { name: node('Reshape', [x.name, i64(`${name}_shape`, [0, t[2], 1, 1])], name), layout: 'nchw' };
        else if (x.layout === 'flat' && t.length === 1)
          out = { name: node('Reshape', [x.name, i64(`${name}_shape`, [0, t[0]])], name), layout: 'flat' };
        else return unsupported(name, cls, `target shape [${t}]`);
        break;
      }
      case 'ZeroPadding2D': {
        const p = cfg.padding as number[][];
        out = { name: node('Pad', [x.name, i64(`${name}_pads`, [0, 0, p[0][0], p[1][0], 0, 0, p[0][1], p[1][1]])], name), layout: 'nchw' };
        break;
      }
      default:
        return unsupported(name, cls);
    }
    vals.set(name, out);
  }
  if (model.outputLayers.length !== 1)
    throw new TricksError('ONNX export: the model must have one output', 'export a single-output classifier');
  const last = vals.get(model.outputLayers[0].name)!;
  const outShape = shapeOf(model.outputLayers[0].outputShape as Shape);
  const y = node(
    'Identity',
    [last.layout === 'nchw' ? node('Transpose', [last.name], 'to_nhwc', [attr('perm', [0, 2, 3, 1])]) : last.name],
    'output',
    [],
    ['logits'],
  );
  const dims = (s: Shape) => s.map((d, i) => (i === 0 || d == null ? { dimParam: 'N' } : { dimValue: d }));
  const tensorType = (s: Shape) => ({ tensorType: { elemType: DT.FLOAT, shape: { dim: dims(s) } } });
  const g = onnx.GraphProto.create({
    name: opts.name ?? model.name,
    node: nodes,
    initializer: inits,
    input: [onnx.ValueInfoProto.create({ name: input, type: tensorType(inShape) })],
    output: [onnx.ValueInfoProto.create({ name: y, type: tensorType(outShape) })],
  });
  const m = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'tricks',
    producerVersion: '0.1.0',
    graph: g,
    metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(m).finish();
}
