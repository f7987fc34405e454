// Sum and Mean over the leading axes (an NHWC tensor reduced to its channels: batch-norm
// statistics, bias gradients, the gradient of broadcasting), which the stock kernels do by
// transposing the whole tensor first; Identity and same-dtype Cast without a copy; and the
// broadcast that the gradients of Mean need (custom kernel BroadcastRows).
import {
  Cast,
  Identity,
  Mean,
  Sum,
  util,
  type CastAttrs,
  type KernelConfig,
  type KernelFunc,
  type MeanAttrs,
  type SumAttrs,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { Native, type KernelArgs, type WasmBackend } from './native.js';
import { ROWS_BLOCK, Threads } from './threads.js';

/** Custom kernel: out (attrs.shape, viewed as [rows, C]) = x (C values) * attrs.scale in every row. */
export const BROADCAST_ROWS = 'TricksBroadcastRows';

/** If axes are exactly the leading `k` axes of shape (0 < k < rank), returns k, else -1. */
export function leadingAxes(shape: number[], axis: number | number[]): number {
  const axes = util
    .parseAxisParam(axis, shape)
    .slice()
    .sort((a, b) => a - b);
  const k = axes.length;
  return k > 0 && k < shape.length && axes.every((a, i) => a === i) ? k : -1;
}

/**
 * If axes are a contiguous run [a0, a1) with 0 < a0 < a1 < rank (an NHWC tensor reduced over H and W:
 * the global average pool), returns [G, R, C]: x viewed as [G][R][C] is reduced over R. Else undefined.
 */
export function middleAxes(shape: number[], axis: number | number[]): [number, number, number] | undefined {
  const axes = util
    .parseAxisParam(axis, shape)
    .slice()
    .sort((a, b) => a - b);
  const a0 = axes[0]!,
    a1 = a0 + axes.length;
  if (axes.length === 0 || a0 === 0 || a1 >= shape.length || !axes.every((a, i) => a === a0 + i)) return undefined;
  return [util.sizeFromShape(shape.slice(0, a0)), util.sizeFromShape(shape.slice(a0, a1)), util.sizeFromShape(shape.slice(a1))];
}

/** Sum or Mean over middle axes, split across the threads by groups (each group's sum in one thread, in a fixed order). */
function groupsReduce(args: Parameters<KernelFunc>[0], mean: boolean, [G, R, C]: [number, number, number]): TensorInfo {
  const {
    inputs: { x },
    backend,
    attrs,
  } = args as unknown as KernelArgs<'x', SumAttrs | MeanAttrs>;
  const axes = util.parseAxisParam(attrs.axis, x.shape);
  const shape = attrs.keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
  const out = backend.makeOutput(shape, 'float32');
  const nat = Native.of(backend),
    th = Threads.of(nat);
  const xP = nat.ptr(x),
    oP = nat.ptr(out);
  th.run(th.ranges(G).map(([a, b]) => ['reduce_groups', [xP + 4 * a * R * C, oP + 4 * a * C, b - a, R, C, mean ? 1 / R : 1]]));
  return out;
}

function rowsReducer(stock: KernelFunc, mean: boolean): KernelFunc {
  return (args) => {
    const {
      inputs: { x },
      backend,
      attrs,
    } = args as unknown as KernelArgs<'x', SumAttrs | MeanAttrs>;
    const k = x.dtype === 'float32' ? leadingAxes(x.shape, attrs.axis) : -1;
    if (util.sizeFromShape(x.shape) === 0 || x.dtype !== 'float32') return stock(args);
    if (k < 0) {
      const mid = middleAxes(x.shape, attrs.axis);
      return mid ? groupsReduce(args, mean, mid) : stock(args);
    }
    const rows = util.sizeFromShape(x.shape.slice(0, k));
    const inner = x.shape.slice(k);
    const out = backend.makeOutput(attrs.keepDims ? [...Array(k).fill(1), ...inner] : inner, 'float32');
    const nat = Native.of(backend),
      th = Threads.of(nat);
    const C = util.sizeFromShape(inner),
      xP = nat.ptr(x);
    nat.withScratch([Math.ceil(rows / ROWS_BLOCK) * C], (part) => {
      const blocks = th.byBlocks(rows, (r0, r1, b0) => ['reduce_blocks', [xP + 4 * r0 * C, part + 4 * b0 * C, r1 - r0, C]]);
      nat.k.sum_blocks(part, nat.ptr(out), blocks, C, mean ? 1 / rows : 1);
    });
    return out;
  };
}

/** The tensor itself, shared (as the cpu backend's Identity): tfjs never writes tensors in place. */
function share(backend: WasmBackend & { incRef(dataId: object): void }, x: TensorInfo): TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

function identity(args: Parameters<KernelFunc>[0]): TensorInfo {
  const {
    inputs: { x },
    backend,
  } = args as unknown as KernelArgs<'x', object>;
  return share(backend as WasmBackend & { incRef(dataId: object): void }, x);
}

function castFunc(stock: KernelFunc): KernelFunc {
  return (args) => {
    const {
      inputs: { x },
      backend,
      attrs,
    } = args as unknown as KernelArgs<'x', CastAttrs>;
    if (x.dtype !== attrs.dtype || x.dtype === 'string') return stock(args);
    return share(backend as WasmBackend & { incRef(dataId: object): void }, x);
  };
}

function broadcastRows(args: Parameters<KernelFunc>[0]): TensorInfo {
  const {
    inputs: { x },
    backend,
    attrs,
  } = args as unknown as KernelArgs<'x', { shape: number[]; scale: number }>;
  const C = util.sizeFromShape(x.shape);
  const out = backend.makeOutput(attrs.shape, 'float32');
  const nat = Native.of(backend),
    xP = nat.ptr(x),
    oP = nat.ptr(out);
  Threads.of(nat).byRows(util.sizeFromShape(attrs.shape) / C, (r0, r1) => [
    'broadcast_rows',
    [xP, oP + 4 * r0 * C, r1 - r0, C, attrs.scale],
  ]);
  return out;
}

/** Custom kernel: out (attrs.shape, viewed as [G, R, C]) = x ([G, C] values) * attrs.scale, the gradient of a per-group Mean. */
export const BROADCAST_GROUPS = 'TricksBroadcastGroups';

function broadcastGroups(args: Parameters<KernelFunc>[0]): TensorInfo {
  const {
    inputs: { x },
    backend,
    attrs,
  } = args as unknown as KernelArgs<'x', { shape: number[]; G: number; R: number; C: number; scale: number }>;
  const out = backend.makeOutput(attrs.shape, 'float32');
  const nat = Native.of(backend),
    th = Threads.of(nat);
  const { G, R, C } = attrs;
  const xP = nat.ptr(x),
    oP = nat.ptr(out);
  th.run(th.ranges(G).map(([a, b]) => ['broadcast_groups', [xP + 4 * a * C, oP + 4 * a * R * C, b - a, R, C, attrs.scale]]));
  return out;
}

export function reduceConfigs(stock: (name: string) => KernelConfig | undefined): KernelConfig[] {
  const configs: KernelConfig[] = [
    { kernelName: BROADCAST_ROWS, backendName: 'wasm', kernelFunc: broadcastRows },
    { kernelName: BROADCAST_GROUPS, backendName: 'wasm', kernelFunc: broadcastGroups },
  ];
  const wrap = (name: string, f: (stock: KernelFunc) => KernelFunc) => {
    const s = stock(name);
    if (s) configs.push({ ...s, kernelFunc: f(s.kernelFunc) });
  };
  wrap(Sum, (s) => rowsReducer(s, false));
  wrap(Mean, (s) => rowsReducer(s, true));
  wrap(Cast, castFunc);
  wrap(Identity, () => identity);
  return configs;
}
