// Add, Sub and Multiply of large float32 tensors (same shape, or a per-channel operand broadcast over
// the rows), and the gradient of Relu as one pass (tfjs-core's is Step, then Multiply), split across
// the kernel threads. They are the residual adds, batch-norm centring, relu gradients and gradient
// sums of a training step. Small tensors and other broadcasts stay on the stock kernels.
import * as tf from '@tensorflow/tfjs-core';
import {
  Add,
  Multiply,
  Relu,
  Sub,
  util,
  type GradConfig,
  type KernelConfig,
  type KernelFunc,
  type Tensor,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { Native, type KernelArgs, type NativeExports } from './native.js';
import { Threads } from './threads.js';

/** Below this many elements (4 MB) the stock kernel on one thread was as fast (measured: 262k elements 0.18 ms stock, 0.25 ms on 2 threads; 4M elements 1.6 ms against 0.85). */
const MIN_ELEMENTS = 1 << 20;
/** Elements per part when splitting a flat array (a multiple of 4 keeps SIMD stores whole). */
const CHUNK = 1 << 12;

const RELU_GRAD = 'TricksReluGrad';
const OPS = { [Add]: 0, [Sub]: 1, [Multiply]: 2 } as Record<string, number>;

/** C if t is a single row of C values (shape [C] or [1, ..., 1, C]), else 0. */
function rowOf(t: TensorInfo, C: number): number {
  const s = t.shape;
  return s.length > 0 && s[s.length - 1] === C && util.sizeFromShape(s) === C ? C : 0;
}

/** Runs kernel `name` over [0, n) split in CHUNK-aligned parts; args(start, count) builds each call. */
export function flat(nat: Native, n: number, name: keyof NativeExports, args: (i: number, count: number) => number[]): void {
  const th = Threads.of(nat);
  th.run(th.ranges(Math.ceil(n / CHUNK)).map(([a, b]) => [name, args(a * CHUNK, Math.min(n, b * CHUNK) - a * CHUNK)]));
}

/** Broadcasts of one value per image and channel ([N,1,1,C] against [N,H,W,C]: squeeze-excitation's scale) from this size: the stock kernel took 33 ns an element. */
const MIN_GROUP_ELEMENTS = 1 << 15;

/**
 * [G, R, C] if b ([G, 1, ..., 1, C], same rank) broadcasts over the middle axes of a, else undefined.
 */
function groupsOf(a: TensorInfo, b: TensorInfo): [number, number, number] | undefined {
  const r = a.shape.length;
  if (r < 3 || b.shape.length !== r || b.shape[0] !== a.shape[0] || b.shape[r - 1] !== a.shape[r - 1]) return undefined;
  if (!b.shape.slice(1, r - 1).every((d) => d === 1) || a.shape.slice(1, r - 1).every((d) => d === 1)) return undefined;
  return [a.shape[0]!, util.sizeFromShape(a.shape.slice(1, r - 1)), a.shape[r - 1]!];
}

function binaryFunc(stock: KernelFunc, kernel: string): KernelFunc {
  const op = OPS[kernel]!;
  return (args) => {
    const { inputs, backend } = args as unknown as KernelArgs<'a' | 'b', object>;
    let { a, b } = inputs;
    const n = util.sizeFromShape(a.shape);
    if (a.dtype === 'float32' && b.dtype === 'float32' && Math.max(n, util.sizeFromShape(b.shape)) >= MIN_GROUP_ELEMENTS) {
      let groups = groupsOf(a, b);
      if (!groups && op !== 1) {
        groups = groupsOf(b, a);
        if (groups) [a, b] = [b, a];
      }
      if (groups) {
        const [G, R, C] = groups;
        const nat = Native.of(backend),
          th = Threads.of(nat);
        const out = backend.makeOutput(a.shape, 'float32');
        const aP = nat.ptr(a),
          bP = nat.ptr(b),
          yP = nat.ptr(out);
        th.run(
          th.ranges(G).map(([g0, g1]) => ['binary_groups', [aP + 4 * g0 * R * C, bP + 4 * g0 * C, yP + 4 * g0 * R * C, g1 - g0, R, C, op]]),
        );
        return out;
      }
    }
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || Math.max(n, util.sizeFromShape(b.shape)) < MIN_ELEMENTS) return stock(args);
    let bC = 0;
    if (!util.arraysEqual(a.shape, b.shape)) {
      const C = a.shape[a.shape.length - 1] ?? 0;
      bC = b.shape.length <= a.shape.length ? rowOf(b, C) : 0;
      if (bC === 0 && op !== 1) {
        // commutative: the per-channel operand may come first
        const C2 = b.shape[b.shape.length - 1] ?? 0;
        if (a.shape.length <= b.shape.length && rowOf(a, C2)) {
          [a, b] = [b, a];
          bC = C2;
        }
      }
      if (bC === 0) return stock(args);
    }
    const nat = Native.of(backend);
    const out = backend.makeOutput(a.shape, 'float32');
    const aP = nat.ptr(a),
      bP = nat.ptr(b),
      yP = nat.ptr(out),
      total = util.sizeFromShape(a.shape);
    if (bC === 0) {
      flat(nat, total, 'binary_op', (i, count) => [aP + 4 * i, bP + 4 * i, yP + 4 * i, count, 0, op]);
    } else {
      Threads.of(nat).byRows(total / bC, (r0, r1) => ['binary_op', [aP + 4 * r0 * bC, bP, yP + 4 * r0 * bC, (r1 - r0) * bC, bC, op]]);
    }
    return out;
  };
}

function reluGradKernel(args: Parameters<KernelFunc>[0]): TensorInfo {
  const {
    inputs: { dy, x },
    backend,
  } = args as unknown as KernelArgs<'dy' | 'x', object>;
  const nat = Native.of(backend);
  const out = backend.makeOutput(x.shape, 'float32');
  const dyP = nat.ptr(dy),
    xP = nat.ptr(x),
    oP = nat.ptr(out);
  flat(nat, util.sizeFromShape(x.shape), 'relu_grad', (i, count) => [dyP + 4 * i, xP + 4 * i, oP + 4 * i, count]);
  return out;
}

/**
 * Relu's gradient from its output instead of its input (step(relu(x)) = step(x) for every finite x), so the
 * tape keeps the tensor the next layer keeps anyway, as PyTorch's in-place ReLU does: the input (a batch
 * norm's output, an add's) is freed after the forward pass. On wasm, >= 1M elements: one native pass.
 */
function reluGrad(original: GradConfig): GradConfig {
  const fromOutput = process.env.TRICKS_WASM_MEMORY_SAVING !== '0'; // off: the input, as tfjs-core (memory benchmark)
  return {
    ...original,
    ...(fromOutput ? { inputsToSave: [], outputsToSave: [true] } : {}),
    gradFunc: (dy, saved, attrs) => {
      const [y] = saved as [Tensor];
      if (
        tf.getBackend() !== 'wasm' ||
        Array.isArray(dy) ||
        y.dtype !== 'float32' ||
        dy.dtype !== 'float32' ||
        y.size < MIN_ELEMENTS ||
        !util.arraysEqual(y.shape, dy.shape)
      ) {
        return original.gradFunc(dy, [y], attrs);
      }
      return { x: () => tf.engine().runKernel(RELU_GRAD, { dy: dy as Tensor, x: y }) as Tensor };
    },
  };
}

export function elementwiseConfigs(stock: (name: string) => KernelConfig | undefined): KernelConfig[] {
  const configs: KernelConfig[] = [{ kernelName: RELU_GRAD, backendName: 'wasm', kernelFunc: reluGradKernel }];
  for (const name of [Add, Sub, Multiply]) {
    const s = stock(name);
    if (s) configs.push({ ...s, kernelFunc: binaryFunc(s.kernelFunc, name) });
  }
  return configs;
}

export function elementwiseGradients(): GradConfig[] {
  const relu = tf.getGradient(Relu);
  return relu ? [reluGrad(relu)] : [];
}
