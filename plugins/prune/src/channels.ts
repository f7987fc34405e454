/**
 * The channel dependency graph that structured pruning needs (which layers' channels are coupled and must be
 * removed together), the masks that zero removed channels in place, and the physically smaller model.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { layerGraph, modelFromParts, modelTopology, topoLayer, weightOf } from '@tricks/models';

type Shape = (number | null)[];

/** Layers that keep the channel axis as it is and have no per-channel weights. */
const PASS_THROUGH = new Set([
  'ReLU',
  'Activation',
  'HardSwish',
  'HardSigmoid6',
  'LeakyReLU',
  'ELU',
  'ThresholdedReLU',
  'PReLU_',
  'Dropout',
  'SpatialDropout2D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
  'MaxPooling2D',
  'AveragePooling2D',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling2D',
  'ZeroPadding2D',
  'Cropping2D',
  'UpSampling2D',
  'StochasticDepth',
]);
const ELEMENTWISE = new Set(['Add', 'Subtract', 'Multiply', 'Average', 'Maximum', 'Minimum']);
/** Activations whose value at 0 is 0, so masked channels stay exactly zero through them. */
const ZERO_PRESERVING = new Set(['linear', 'relu', 'relu6', 'elu', 'selu', 'swish', 'tanh', 'softsign', 'mish', 'gelu', 'gelu_new']);

export interface ChannelSegment {
  group: number;
  /** Offset of the segment in the consumer's channel axis (non-zero after a concatenation). */
  offset: number;
  size: number;
}

/** How a layer takes channels: its kernel's input axis is made of these segments, repeated for flattened maps. */
export interface ChannelConsumer {
  layer: string;
  segments: ChannelSegment[];
  /** Total channels of the input's channel axis. */
  channels: number;
  /** Spatial positions flattened ahead of a Dense (H*W), else 1: row p*channels + offset + c. */
  repeat: number;
}

export interface ChannelGroup {
  id: number;
  size: number;
  /** Conv2D / Dense layers whose output channels (kernel's last axis, bias) make this group. */
  producers: string[];
  /** BatchNormalization and depthwise convs on these channels (their weights are per channel). */
  members: string[];
  /** Layers that take these channels as input (kernel input axis). */
  consumers: string[];
  /** Reshape layers whose target shape ends with these channels (SE modules). */
  reshapes: string[];
  /** Layers of the group, to match against an ignore list. */
  layers: string[];
  /** Why the group cannot be pruned (model input or output, an unknown layer, ignored...). */
  fixed: string[];
  /** A non-zero-preserving activation on the group: masked training and the shrunk model differ slightly. */
  inexact?: string;
}

export interface ChannelGraph {
  groups: ChannelGroup[];
  consumers: Map<string, ChannelConsumer>;
}

/**
 * The channel dependency graph of a functional model: channels that must be pruned together form a group.
 * conv/dense outputs start a group; BatchNorm, depthwise convs (multiplier 1), activations, pooling, dropout
 * and SE reshapes carry it on; residual adds and SE multiplies merge their inputs' groups (all members pruned
 * together); concatenations place several groups side by side for the next layer; Flatten repeats a group's
 * channels over the spatial positions for the classifier. The model's input and output groups, anything that
 * meets a layer it does not know, and the groups of ignored layers are fixed.
 */
export function channelGraph(model: LayersModel, ignore: string[] = []): ChannelGraph {
  const parent: number[] = [];
  const info: {
    size: number;
    producers: string[];
    members: string[];
    consumers: Set<string>;
    reshapes: string[];
    layers: string[];
    fixed: string[];
    inexact?: string;
  }[] = [];
  const fresh = (size: number) => {
    parent.push(parent.length);
    info.push({ size, producers: [], members: [], consumers: new Set(), reshapes: [], layers: [], fixed: [] });
    return parent.length - 1;
  };
  const find = (a: number): number => (parent[a] === a ? a : (parent[a] = find(parent[a])));
  const union = (a: number, b: number) => {
    const ra = find(a),
      rb = find(b);
    if (ra !== rb) parent[rb] = ra;
  };
  interface Slot {
    segs: { node: number; size: number }[];
    repeat: number;
  }
  const slots = new Map<string, Slot>();
  const consumerSlots = new Map<string, Slot>();
  const chans = (s: Slot) => s.segs.reduce((n, g) => n + g.size, 0);
  const fixAll = (s: Slot | undefined, why: string) => s?.segs.forEach((g) => info[g.node].fixed.push(why));
  const shapeOf = (l: tfl.layers.Layer): Shape => {
    const s = l.outputShape as Shape | Shape[];
    return (Array.isArray(s[0]) ? s[0] : s) as Shape;
  };
  const single = (s: Slot) => s.segs.length === 1;

  const graph = layerGraph(model);
  for (const node of graph.values()) {
    const { layer, className: cls, name } = node;
    const ins = node.inputs.map((i) => slots.get(i)!);
    const inp = ins[0];
    const cfg = layer.getConfig() as Record<string, unknown>;
    const outShape = shapeOf(layer);
    const outC = outShape.at(-1) as number;
    const newNode = (why?: string) => {
      const n = fresh(outC);
      info[n].layers.push(name);
      if (why) info[n].fixed.push(why);
      return { segs: [{ node: n, size: outC }], repeat: 1 };
    };
    let out: Slot;
    const unknown = (why: string) => {
      for (const s of ins) fixAll(s, why);
      return newNode(why);
    };
    if (cls === 'InputLayer') out = newNode('model input');
    else if (cls === 'Conv2D' || cls === 'Dense') {
      if (cls === 'Conv2D' && inp.repeat !== 1) out = unknown(`${name} takes flattened input`);
      else {
        consumerSlots.set(name, inp);
        for (const g of inp.segs) info[g.node].consumers.add(name);
        out = newNode(ignore.includes(name) ? `${name} is ignored` : undefined);
        info[out.segs[0].node].producers.push(name);
        if (cfg.activation && !ZERO_PRESERVING.has(String(cfg.activation)))
          info[out.segs[0].node].inexact = `${name} activation ${cfg.activation}`;
      }
    } else if (
      (cls === 'DepthwiseConv2D' && Number(cfg.depthMultiplier ?? 1) === 1) ||
      (cls === 'BatchNormalization' && [-1, layer.inboundNodes[0].inputTensors[0].shape.length - 1].includes(Number(cfg.axis)))
    ) {
      if (inp.repeat !== 1 || !single(inp)) out = unknown(`${name} on flattened or concatenated channels`);
      else {
        out = inp;
        const g = inp.segs[0].node;
        info[g].members.push(name);
        info[g].layers.push(name);
        if (ignore.includes(name)) info[g].fixed.push(`${name} is ignored`);
      }
    } else if (PASS_THROUGH.has(cls)) {
      out = inp;
      if (cls === 'Activation' && !ZERO_PRESERVING.has(String(cfg.activation)))
        for (const g of inp.segs) info[g.node].inexact = `${name} (${cfg.activation})`;
    } else if (cls === 'Flatten') {
      const inShape = layer.inboundNodes[0].inputTensors[0].shape;
      out = { segs: inp.segs, repeat: inp.repeat * inShape.slice(1, -1).reduce<number>((a, b) => a * (b ?? 1), 1) };
    } else if (ELEMENTWISE.has(cls)) {
      const sizes = (s: Slot) => s.segs.map((g) => g.size).join(',') + `x${s.repeat}`;
      if (ins.every((s) => sizes(s) === sizes(inp))) {
        for (const s of ins.slice(1)) s.segs.forEach((g, i) => union(inp.segs[i].node, g.node));
        out = inp;
      } else out = unknown(`${name} joins tensors of different channel layouts`);
    } else if (cls === 'Concatenate' && [-1, outShape.length - 1].includes(Number(cfg.axis)) && ins.every((s) => s.repeat === 1)) {
      out = { segs: ins.flatMap((s) => s.segs), repeat: 1 };
    } else if (cls === 'Reshape' && inp.repeat === 1 && single(inp) && (cfg.targetShape as number[]).at(-1) === chans(inp)) {
      out = inp;
      info[inp.segs[0].node].reshapes.push(name);
    } else out = unknown(`${name} (${cls}) is not known to the channel graph`);
    slots.set(name, out);
  }
  for (const l of model.outputLayers) fixAll(slots.get(l.name), 'model output');

  // merge info into roots
  const roots = new Map<number, ChannelGroup>();
  for (let n = 0; n < parent.length; n++) {
    const r = find(n);
    let g = roots.get(r);
    if (!g)
      roots.set(
        r,
        (g = { id: roots.size, size: info[r].size, producers: [], members: [], consumers: [], reshapes: [], layers: [], fixed: [] }),
      );
    const i = info[n];
    if (i.size !== g.size) g.fixed.push(`coupled channels of different sizes (${i.size} vs ${g.size})`);
    g.producers.push(...i.producers);
    g.members.push(...i.members);
    g.consumers.push(...i.consumers);
    g.reshapes.push(...i.reshapes);
    g.layers.push(...i.layers);
    g.fixed.push(...i.fixed);
    if (i.inexact) g.inexact = i.inexact;
  }
  for (const g of roots.values()) {
    if (!g.producers.length && !g.fixed.length) g.fixed.push('no conv or dense layer produces these channels');
    g.consumers = [...new Set(g.consumers)];
    g.fixed = [...new Set(g.fixed)];
  }
  const consumers = new Map<string, ChannelConsumer>();
  for (const [layer, s] of consumerSlots) {
    let offset = 0;
    const segments = s.segs.map((g) => {
      const seg = { group: roots.get(find(g.node))!.id, offset, size: g.size };
      offset += g.size;
      return seg;
    });
    consumers.set(layer, { layer, segments, channels: offset, repeat: s.repeat });
  }
  return { groups: [...roots.values()], consumers };
}

/** Channels each group keeps (sorted indices); groups not in the map keep all. */
export type KeepPlan = Map<number, number[]>;

/**
 * The physically smaller model: producers lose output channels, BatchNorm/depthwise members and consumers'
 * input rows follow, SE reshapes get the new width. Kept weights are copied; the topology stays standard.
 */
export async function shrinkModel(model: LayersModel, graph: ChannelGraph, keep: KeepPlan): Promise<LayersModel> {
  const topo = modelTopology(model);
  const weights = new Map<string, tf.Tensor>();
  const byLayer = new Map<string, { axis: 'out' | 'member' | 'in'; idx?: number[] }[]>();
  const add = (l: string, e: { axis: 'out' | 'member' | 'in'; idx?: number[] }) => byLayer.set(l, [...(byLayer.get(l) ?? []), e]);
  for (const g of graph.groups) {
    const k = keep.get(g.id);
    if (!k || k.length === g.size) continue;
    for (const p of g.producers) {
      add(p, { axis: 'out', idx: k });
      const cfg = topoLayer(topo, p).config;
      if ('filters' in cfg) cfg.filters = k.length;
      else cfg.units = k.length;
    }
    for (const m of g.members) add(m, { axis: 'member', idx: k });
    for (const r of g.reshapes) {
      const ts = topoLayer(topo, r).config.target_shape as number[];
      ts[ts.length - 1] = k.length;
    }
  }
  for (const [layer, c] of graph.consumers) {
    if (!c.segments.some((s) => keep.has(s.group) && keep.get(s.group)!.length !== s.size)) continue;
    const rows: number[] = [];
    for (let p = 0; p < c.repeat; p++)
      for (const s of c.segments)
        for (const ch of keep.get(s.group) ?? [...Array(s.size).keys()]) rows.push(p * c.channels + s.offset + ch);
    add(layer, { axis: 'in', idx: rows });
  }
  for (const layer of model.layers) {
    const edits = byLayer.get(layer.name) ?? [];
    for (const w of layer.weights) {
      const short = w.originalName.slice(layer.name.length + 1);
      weights.set(
        w.originalName,
        tf.tidy(() => {
          let t = w.read();
          for (const e of edits) {
            const idx = tf.tensor1d(e.idx!, 'int32');
            if (e.axis === 'out') t = tf.gather(t, idx, t.rank - 1);
            else if (e.axis === 'member') t = short === 'depthwise_kernel' ? tf.gather(t, idx, 2) : tf.gather(t, idx, t.rank - 1);
            else if (short === 'kernel') t = tf.gather(t, idx, t.rank - 2);
          }
          return tf.clone(t);
        }),
      );
    }
  }
  try {
    return await modelFromParts(topo, weights, model.getUserDefinedMetadata() as Record<string, unknown> | undefined);
  } finally {
    tf.dispose([...weights.values()]);
  }
}

/**
 * Zeroes the removed channels in place (kernel columns and biases of producers, BatchNorm gamma/beta and
 * depthwise filters of members): the masked model computes what the shrunk one will, as long as the
 * group's activations map 0 to 0 (ChannelGroup.inexact says when not).
 */
export function applyMasks(model: LayersModel, graph: ChannelGraph, keep: KeepPlan): void {
  tf.tidy(() => {
    for (const g of graph.groups) {
      const k = keep.get(g.id);
      if (!k || k.length === g.size) continue;
      const m = new Float32Array(g.size);
      for (const c of k) m[c] = 1;
      const mask = tf.tensor1d(m);
      const scale = (w: tfl.LayerVariable | undefined, shape?: number[]) => {
        if (w) (w.read() as tf.Variable).assign(tf.mul(w.read(), shape ? tf.reshape(mask, shape) : mask));
      };
      for (const p of g.producers) {
        const layer = model.getLayer(p);
        scale(weightOf(layer, 'kernel'));
        scale(weightOf(layer, 'bias'));
      }
      for (const name of g.members) {
        const layer = model.getLayer(name);
        if (layer.getClassName() === 'DepthwiseConv2D') {
          scale(weightOf(layer, 'depthwise_kernel'), [1, 1, g.size, 1]);
          scale(weightOf(layer, 'bias'));
        } else {
          scale(weightOf(layer, 'gamma'));
          scale(weightOf(layer, 'beta'));
        }
      }
    }
  });
}
