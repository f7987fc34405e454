/**
 * The custom layers of the model zoo, registered with tf.serialization.registerClass so that a plain
 * `tf.loadLayersModel` can read a saved model: a deployer imports `@tricks/models/runtime` once, before loading.
 * This module depends only on tfjs-core and tfjs-layers.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

type Kwargs = Record<string, unknown>;
/** tfjs-layers' LayerArgs (name, trainable, ...), which the package does not export by name. */
export type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
type Initializer = ReturnType<typeof tfl.initializers.heNormal>;
type Shape = (number | null)[];
const one = (x: tf.Tensor | tf.Tensor[]): tf.Tensor => (Array.isArray(x) ? x[0] : x);
const oneShape = (s: Shape | Shape[]): Shape => (Array.isArray(s[0]) ? (s[0] as Shape) : (s as Shape));

/**
 * One-pass kernels a backend may register (@tricks/backend-wasm does for wasm): forward {x}, gradient {dy, x}.
 * Without them the layers below compose tfjs ops, with the same values.
 */
const FUSED = {
  hswish: ['TricksHardSwish', 'TricksHardSwishGrad'],
  hsigmoid: ['TricksHardSigmoid', 'TricksHardSigmoidGrad'],
} as const;

/** f(x) through the backend's fused kernel pair when it has them and x is float32; undefined otherwise. */
function fused(kind: keyof typeof FUSED, x: tf.Tensor): tf.Tensor | undefined {
  const [fwd, grad] = FUSED[kind];
  const backend = tf.getBackend();
  if (x.dtype !== 'float32' || tf.getKernel(fwd, backend) === undefined || tf.getKernel(grad, backend) === undefined) return undefined;
  const op = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    save([x]);
    return {
      value: tf.engine().runKernel(fwd, { x }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.engine().runKernel(grad, { dy, x: saved[0] }) as tf.Tensor,
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x);
}

/** h-swish (Howard et al. 2019): x * relu6(x + 3) / 6. */
export class HardSwish extends tfl.layers.Layer {
  static className = 'HardSwish';
  call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = one(inputs);
      return fused('hswish', x) ?? tf.mul(x, tf.div(tf.relu6(tf.add(x, 3)), 6));
    });
  }
}

/** h-sigmoid as in PyTorch (nn.Hardsigmoid): relu6(x + 3) / 6. tfjs's 'hardSigmoid' is Keras's 0.2x + 0.5, a different function. */
export class HardSigmoid extends tfl.layers.Layer {
  static className = 'HardSigmoid6';
  call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = one(inputs);
      return fused('hsigmoid', x) ?? tf.div(tf.relu6(tf.add(x, 3)), 6);
    });
  }
}

export interface StochasticDepthArgs extends LayerArgs {
  /** Probability of dropping the branch for one sample. */
  rate: number;
}

/**
 * Stochastic depth (Huang et al. 2016), "row" mode as in torchvision.ops.StochasticDepth: in training each
 * sample's residual branch is zeroed with probability `rate` and otherwise scaled by 1/(1-rate); at inference
 * it is the identity.
 */
export class StochasticDepth extends tfl.layers.Layer {
  static className = 'StochasticDepth';
  readonly rate: number;
  constructor(args: StochasticDepthArgs) {
    super(args);
    if (!(args.rate >= 0 && args.rate < 1)) throw new Error(`StochasticDepth: rate must be in [0, 1), got ${args.rate}`);
    this.rate = args.rate;
  }
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = one(inputs);
    if (!kwargs?.training || this.rate === 0) return tf.clone(x);
    return tf.tidy(() => {
      const keep = 1 - this.rate;
      const shape = [x.shape[0], ...x.shape.slice(1).map(() => 1)];
      const mask = tf.floor(tf.add(tf.randomUniform(shape), keep));
      return tf.mul(x, tf.div(mask, keep));
    });
  }
  getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate };
  }
}

export type GroupedConvImpl = 'depthwise' | 'split' | 'dense';

export interface GroupedConv2DArgs extends LayerArgs {
  filters: number;
  kernelSize: number;
  strides?: number;
  groups: number;
  /**
   * How the grouped convolution is computed; all three give the same result from the same weights.
   * 'depthwise' (default): one depthwise conv with channel multiplier filters/groups, then a sum over each
   * group's input channels: exactly the grouped conv's multiply-adds, in 2 ops.
   * 'split': one conv2d per group on a channel slice, then concat (2*groups+1 ops).
   * 'dense': one full conv2d with a block-diagonal kernel (groups times the multiply-adds).
   */
  impl?: GroupedConvImpl;
  useBias?: boolean;
  kernelInitializer?: Initializer;
  /** 'same' (default, TF-style) or 'valid' (a ZeroPadding2D before it gives PyTorch's symmetric padding). */
  padding?: 'same' | 'valid';
}

/**
 * A grouped 2-D convolution (as in ResNeXt), padding 'same' (or 'valid'), which tfjs does not have. The kernel is stored as
 * [k, k, inChannels, filters/groups]: the weight from input channel i (in group g = i / (in/groups)) to
 * output channel g*(filters/groups) + m is kernel[:, :, i, m], i.e. PyTorch's weight[g*fg+m, i % (in/groups)]
 * transposed. It has exactly the parameters of PyTorch's Conv2d(groups=groups).
 */
export class GroupedConv2D extends tfl.layers.Layer {
  static className = 'GroupedConv2D';
  readonly filters: number;
  readonly kernelSize: number;
  readonly strides: number;
  readonly groups: number;
  impl: GroupedConvImpl;
  readonly useBias: boolean;
  readonly padding: 'same' | 'valid';
  private readonly kernelInit: Initializer;
  private kernel?: tfl.LayerVariable;
  private bias?: tfl.LayerVariable;

  constructor(args: GroupedConv2DArgs) {
    super(args);
    this.filters = args.filters;
    this.kernelSize = args.kernelSize;
    this.strides = args.strides ?? 1;
    this.groups = args.groups;
    this.impl = args.impl ?? 'depthwise';
    this.useBias = args.useBias ?? false;
    this.padding = args.padding ?? 'same';
    this.kernelInit = args.kernelInitializer ?? tfl.initializers.heNormal({});
    if (this.filters % this.groups !== 0) throw new Error(`GroupedConv2D: filters ${this.filters} not divisible by groups ${this.groups}`);
  }

  build(inputShape: Shape | Shape[]): void {
    const cin = oneShape(inputShape).at(-1) as number;
    if (cin % this.groups !== 0)
      throw new Error(`GroupedConv2D ${this.name}: input channels ${cin} not divisible by groups ${this.groups}`);
    const k = this.kernelSize;
    this.kernel = this.addWeight('kernel', [k, k, cin, this.filters / this.groups], 'float32', this.kernelInit);
    if (this.useBias) this.bias = this.addWeight('bias', [this.filters], 'float32', tfl.initializers.zeros());
    this.built = true;
  }

  computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = oneShape(inputShape);
    const k = this.kernelSize;
    const out = (n: number | null) =>
      n == null ? null : this.padding === 'same' ? Math.ceil(n / this.strides) : Math.floor((n - k) / this.strides) + 1;
    return [s[0], out(s[1]), out(s[2]), this.filters];
  }

  call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = one(inputs) as tf.Tensor4D;
      const w = this.kernel!.read() as tf.Tensor4D;
      let y = groupedConv2d(x, w, this.groups, this.strides, this.impl, this.padding);
      if (this.bias) y = tf.add(y, this.bias.read());
      return y;
    });
  }

  getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      groups: this.groups,
      impl: this.impl,
      useBias: this.useBias,
      padding: this.padding,
    };
  }
}

/** Grouped conv of x [B,H,W,Cin] with kernel [k,k,Cin,Cout/groups], padding 'same' by default (see GroupedConv2D). */
export function groupedConv2d(
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  groups: number,
  strides: number,
  impl: GroupedConvImpl = 'depthwise',
  padding: 'same' | 'valid' = 'same',
): tf.Tensor4D {
  const [k, , cin, m] = w.shape;
  const cg = cin / groups;
  const cout = m * groups;
  if (impl === 'depthwise') {
    const y = tf.depthwiseConv2d(x, w, strides, padding);
    const [b, h, wd] = y.shape;
    return tf.reshape(tf.sum(tf.reshape(y, [b, h, wd, groups, cg, m]), 4), [b, h, wd, cout]);
  }
  if (impl === 'split') {
    const xs = tf.split(x, groups, 3);
    const ws = tf.split(w, groups, 2);
    return tf.concat(
      xs.map((xi, g) => tf.conv2d(xi as tf.Tensor4D, ws[g] as tf.Tensor4D, strides, padding)),
      3,
    ) as tf.Tensor4D;
  }
  // dense: a block-diagonal kernel [k,k,Cin,Cout]
  const eye = tf.reshape(tf.eye(groups), [1, 1, groups, 1, groups, 1]);
  const full = tf.reshape(tf.mul(tf.reshape(w, [k, k, groups, cg, 1, m]), eye), [k, k, cin, cout]) as tf.Tensor4D;
  return tf.conv2d(x, full, strides, padding);
}

export interface WindowAttentionArgs extends LayerArgs {
  numHeads: number;
  windowSize: number;
  shiftSize: number;
  kernelInitializer?: Initializer;
}

/**
 * Shifted-window multi-head self-attention of Swin (Liu et al. 2021), as torchvision's ShiftedWindowAttention:
 * input and output [B, H, W, C]. Pads H, W up to multiples of the window, rolls by -shift (no shift when the
 * window covers the padded map), partitions into windows, attends within each window with a learned relative
 * position bias table [(2w-1)^2, heads] and, when shifted, a -100 mask between regions that were not
 * neighbours, then reverses all of it. Weights: qkv kernel [C, 3C] + bias, proj kernel [C, C] + bias, table.
 */
export class WindowAttention extends tfl.layers.Layer {
  static className = 'WindowAttention';
  readonly numHeads: number;
  readonly windowSize: number;
  readonly shiftSize: number;
  private readonly kernelInit: Initializer;
  private qkvKernel?: tfl.LayerVariable;
  private qkvBias?: tfl.LayerVariable;
  private projKernel?: tfl.LayerVariable;
  private projBias?: tfl.LayerVariable;
  private table?: tfl.LayerVariable;
  private geometry?: WindowGeometry;

  constructor(args: WindowAttentionArgs) {
    super(args);
    this.numHeads = args.numHeads;
    this.windowSize = args.windowSize;
    this.shiftSize = args.shiftSize;
    this.kernelInit = args.kernelInitializer ?? tfl.initializers.truncatedNormal({ stddev: 0.02 });
  }

  build(inputShape: Shape | Shape[]): void {
    const s = oneShape(inputShape);
    const [h, w, c] = [s[1], s[2], s[3]] as number[];
    if (h == null || w == null) throw new Error(`WindowAttention ${this.name}: needs a static height and width`);
    if (c % this.numHeads !== 0) throw new Error(`WindowAttention ${this.name}: channels ${c} not divisible by heads ${this.numHeads}`);
    const ws = this.windowSize;
    this.qkvKernel = this.addWeight('qkv_kernel', [c, 3 * c], 'float32', this.kernelInit);
    this.qkvBias = this.addWeight('qkv_bias', [3 * c], 'float32', tfl.initializers.zeros());
    this.projKernel = this.addWeight('proj_kernel', [c, c], 'float32', this.kernelInit);
    this.projBias = this.addWeight('proj_bias', [c], 'float32', tfl.initializers.zeros());
    this.table = this.addWeight(
      'relative_position_bias_table',
      [(2 * ws - 1) ** 2, this.numHeads],
      'float32',
      tfl.initializers.truncatedNormal({ stddev: 0.02 }),
    );
    this.geometry = windowGeometry(h, w, ws, this.shiftSize);
    this.built = true;
  }

  computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return oneShape(inputShape);
  }

  call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = one(inputs) as tf.Tensor4D;
      const [b, h, w, c] = x.shape;
      const g = this.geometry!;
      const ws = this.windowSize;
      const heads = this.numHeads;
      const d = c / heads;
      const n = ws * ws;
      const nW = (g.padH / ws) * (g.padW / ws);
      let t: tf.Tensor =
        g.padH !== h || g.padW !== w
          ? tf.pad(x, [
              [0, 0],
              [0, g.padH - h],
              [0, g.padW - w],
              [0, 0],
            ])
          : x;
      if (g.shift > 0) t = roll2d(t, -g.shift);
      // partition: [B, nH, ws, nW, ws, C] -> [B*nW, N, C]
      t = tf.reshape(tf.transpose(tf.reshape(t, [b, g.padH / ws, ws, g.padW / ws, ws, c]), [0, 1, 3, 2, 4, 5]), [b * nW * n, c]);
      const qkv = tf.add(tf.matMul(t as tf.Tensor2D, this.qkvKernel!.read() as tf.Tensor2D), this.qkvBias!.read());
      const parts = tf.transpose(tf.reshape(qkv, [b * nW, n, 3, heads, d]), [2, 0, 3, 1, 4]); // [3, B*nW, heads, N, d]
      const [q, k, v] = tf.unstack(parts, 0);
      let attn: tf.Tensor = tf.matMul(tf.mul(q, d ** -0.5), k, false, true); // [B*nW, heads, N, N]
      // relative position bias: one-hot [N*N, T] @ table [T, heads] (a matmul, whose gradient every backend has)
      const bias = tf.matMul(tf.oneHot(tf.tensor1d(g.index, 'int32') as tf.Tensor1D, (2 * ws - 1) ** 2), this.table!.read() as tf.Tensor2D);
      attn = tf.add(attn, tf.expandDims(tf.transpose(tf.reshape(bias, [n, n, heads]), [2, 0, 1]), 0));
      if (g.mask) {
        const mask = tf.tensor(g.mask, [1, nW, 1, n, n]);
        attn = tf.reshape(tf.add(tf.reshape(attn, [b, nW, heads, n, n]), mask), [b * nW, heads, n, n]);
      }
      attn = tf.softmax(attn, -1);
      let o: tf.Tensor = tf.reshape(tf.transpose(tf.matMul(attn, v), [0, 2, 1, 3]), [b * nW * n, c]);
      o = tf.add(tf.matMul(o as tf.Tensor2D, this.projKernel!.read() as tf.Tensor2D), this.projBias!.read());
      // reverse windows
      o = tf.reshape(tf.transpose(tf.reshape(o, [b, g.padH / ws, g.padW / ws, ws, ws, c]), [0, 1, 3, 2, 4, 5]), [b, g.padH, g.padW, c]);
      if (g.shift > 0) o = roll2d(o, g.shift);
      if (g.padH !== h || g.padW !== w) o = tf.slice(o, [0, 0, 0, 0], [b, h, w, c]);
      return o;
    });
  }

  getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), numHeads: this.numHeads, windowSize: this.windowSize, shiftSize: this.shiftSize };
  }
}

export interface WindowGeometry {
  padH: number;
  padW: number;
  /** The shift actually used: 0 when the window covers the padded map. */
  shift: number;
  /** Relative position index, N*N entries into the (2w-1)^2 table. */
  index: Int32Array;
  /** The shifted-window mask [nW, N, N] (0 or -100), or undefined without shift. */
  mask?: Float32Array;
}

/** The static geometry of a window attention on an h x w map (as torchvision 0.14 computes it). */
export function windowGeometry(h: number, w: number, ws: number, shiftSize: number): WindowGeometry {
  const padH = Math.ceil(h / ws) * ws;
  const padW = Math.ceil(w / ws) * ws;
  // torchvision sets the shift to 0 per axis when the window covers it; we use square windows and maps,
  // and shift both axes or neither (a non-square map with one covered axis is rejected below).
  const shiftH = ws >= padH ? 0 : shiftSize;
  const shiftW = ws >= padW ? 0 : shiftSize;
  if (shiftH !== shiftW) throw new Error(`WindowAttention: a ${h}x${w} map with window ${ws} would shift one axis only; use a square map`);
  const shift = shiftH;
  const n = ws * ws;
  const index = new Int32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const dy = Math.floor(i / ws) - Math.floor(j / ws) + ws - 1;
      const dx = (i % ws) - (j % ws) + ws - 1;
      index[i * n + j] = dy * (2 * ws - 1) + dx;
    }
  }
  let mask: Float32Array | undefined;
  if (shift > 0) {
    const region = (p: number, size: number) => (p < size - ws ? 0 : p < size - shift ? 1 : 2);
    const nWh = padH / ws;
    const nWw = padW / ws;
    mask = new Float32Array(nWh * nWw * n * n);
    for (let wy = 0; wy < nWh; wy++) {
      for (let wx = 0; wx < nWw; wx++) {
        const ids: number[] = [];
        for (let t = 0; t < n; t++) ids.push(region(wy * ws + Math.floor(t / ws), padH) * 3 + region(wx * ws + (t % ws), padW));
        const base = (wy * nWw + wx) * n * n;
        for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) mask[base + i * n + j] = ids[i] === ids[j] ? 0 : -100;
      }
    }
  }
  return { padH, padW, shift, index, mask };
}

/** torch.roll over axes 1 and 2 of [B,H,W,C] by `shift` (negative: towards the origin). */
function roll2d(x: tf.Tensor, shift: number): tf.Tensor {
  const rollAxis = (t: tf.Tensor, axis: number) => {
    const size = t.shape[axis];
    const s = ((shift % size) + size) % size;
    if (s === 0) return t;
    const [a, b] = tf.split(t, [size - s, s], axis);
    return tf.concat([b, a], axis);
  };
  return rollAxis(rollAxis(x, 1), 2);
}

/**
 * The patch-merging gather of Swin: pads odd sizes, then concatenates the 2x2 neighbours
 * x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2] along channels: [B,H,W,C] -> [B,H/2,W/2,4C].
 * (torchvision then applies LayerNorm(4C) and Linear(4C, 2C, bias=False): standard layers.)
 */
export class PatchMerge extends tfl.layers.Layer {
  static className = 'PatchMerge';
  computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = oneShape(inputShape);
    const half = (n: number | null) => (n == null ? null : Math.ceil(n / 2));
    return [s[0], half(s[1]), half(s[2]), (s[3] as number) * 4];
  }
  call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      let x = one(inputs) as tf.Tensor4D;
      const [b, h, w, c] = x.shape;
      if (h % 2 || w % 2)
        x = tf.pad(x, [
          [0, 0],
          [0, h % 2],
          [0, w % 2],
          [0, 0],
        ]);
      const h2 = Math.ceil(h / 2);
      const w2 = Math.ceil(w / 2);
      // [B, h2, 2(dy), w2, 2(dx), C] -> [B, h2, w2, dx, dy, C] so that channel blocks run (0,0), (1,0), (0,1), (1,1)
      const t = tf.transpose(tf.reshape(x, [b, h2, 2, w2, 2, c]), [0, 1, 3, 4, 2, 5]);
      return tf.reshape(t, [b, h2, w2, 4 * c]);
    });
  }
}

for (const cls of [HardSwish, HardSigmoid, StochasticDepth, GroupedConv2D, WindowAttention, PatchMerge]) {
  tf.serialization.registerClass(cls as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);
}

/** Class names of the custom layers registered by this module. */
export const CUSTOM_LAYERS = ['HardSwish', 'HardSigmoid6', 'StochasticDepth', 'GroupedConv2D', 'WindowAttention', 'PatchMerge'];
