// Every kernel that registerWasmTrainingKernels() registers must agree with the cpu backend
// (within 1e-4 of the reference's largest magnitude) on random shapes, strides, paddings and
// dilations.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import * as tfl from '@tensorflow/tfjs-layers'; // also registers the gradients of tfjs-core ops
import { expect } from 'chai';
import { registerWasmTrainingKernels } from '../src/index.js';
import { ADAM_STEP_KERNEL, Adam, AdamW, SGD, SGD_STEP_KERNEL, type TricksOptimizer } from '@tricks/core';

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

/** mulberry32: a small seeded generator, so a failure names a reproducible case. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOL = 1e-4;

type Input = { shape: number[]; values: Float32Array | Int32Array };
type Fn = (...xs: tf.Tensor[]) => tf.Tensor;

async function run(backend: string, inputs: Input[], f: Fn): Promise<Float32Array> {
  await tf.setBackend(backend);
  const xs = inputs.map((i) => tf.tensor(i.values, i.shape, i.values instanceof Int32Array ? 'int32' : 'float32'));
  const y = tf.tidy(() => f(...xs));
  const values = Float32Array.from(await y.data());
  tf.dispose([...xs, y]);
  return values;
}

/** Runs f on both backends with the same input values and returns [cpu, wasm] outputs. */
async function both(inputs: Input[], f: Fn): Promise<[Float32Array, Float32Array]> {
  return [await run('cpu', inputs, f), await run('wasm', inputs, f)];
}

function expectClose(ref: Float32Array, got: Float32Array, what: string): void {
  expect(got.length, what).to.equal(ref.length);
  let scale = 1e-6,
    err = 0;
  for (let i = 0; i < ref.length; i++) {
    scale = Math.max(scale, Math.abs(ref[i]!));
    err = Math.max(err, Math.abs(ref[i]! - got[i]!));
  }
  expect(err / scale, `${what}: max error ${err} against max |ref| ${scale}`).to.be.at.most(TOL);
}

function randn(r: () => number, shape: number[]): { shape: number[]; values: Float32Array } {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = (r() + r() + r() - 1.5) * 2;
  return { shape, values };
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: () => number, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));

function randomPad(r: () => number, f: number): Pad {
  const kind = int(r, 0, 3);
  if (kind === 0) return 'same';
  if (kind === 1) return 'valid';
  if (kind === 2) return int(r, 0, f - 1);
  return [
    [0, 0],
    [int(r, 0, f - 1), int(r, 0, f - 1)],
    [int(r, 0, f - 1), int(r, 0, f - 1)],
    [0, 0],
  ];
}

/** A conv case; Winograd cases (3x3, stride 1, >= 8 channels) are drawn half the time. */
function convCase(r: () => number, allowDilation: boolean) {
  const winograd = r() < 0.5;
  const f = winograd ? 3 : pick(r, [1, 2, 3, 5]);
  const stride = winograd ? 1 : pick(r, [1, 2, 3]);
  const dilation = allowDilation && !winograd && stride === 1 && r() < 0.4 ? 2 : 1;
  const c = winograd ? int(r, 8, 20) : int(r, 1, 12);
  const k = winograd ? int(r, 8, 20) : int(r, 1, 12);
  const eff = (f - 1) * dilation + 1;
  const h = int(r, eff, eff + 10),
    w = int(r, eff, eff + 10);
  return { n: int(r, 1, 3), h, w, c, k, f, stride, dilation, pad: randomPad(r, f) };
}

describe('wasm training kernels match the cpu backend', function () {
  this.timeout(60000);

  let previousBackend: string | undefined; // undefined when no backend was initialized yet
  before(async () => {
    previousBackend = tf.getBackend();
    registerWasmTrainingKernels();
    registerWasmTrainingKernels(); // idempotent
    await tf.setBackend('wasm');
  });
  after(async () => {
    if (previousBackend) await tf.setBackend(previousBackend);
  });

  it('Conv2D and FusedConv2D (Winograd and stock paths)', async () => {
    const r = rng(1);
    for (let i = 0; i < 24; i++) {
      const c = convCase(r, true);
      const x = randn(r, [c.n, c.h, c.w, c.c]),
        w = randn(r, [c.f, c.f, c.c, c.k]),
        b = randn(r, [c.k]);
      const what = `conv ${JSON.stringify(c)}`;
      const [ref, got] = await both([x, w], (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, c.pad, 'NHWC', c.dilation));
      expectClose(ref, got, what);
      const act = pick(r, ['linear', 'relu', 'relu6'] as const);
      const [ref2, got2] = await both([x, w, b], (x, w, b) =>
        tf.fused.conv2d({
          x: x as tf.Tensor4D,
          filter: w as tf.Tensor4D,
          strides: c.stride,
          pad: c.pad,
          dilations: c.dilation,
          bias: b,
          activation: act,
        }),
      );
      expectClose(ref2, got2, `fused ${act} ${what}`);
    }
  });

  it('Conv2DBackpropInput and Conv2DBackpropFilter', async () => {
    const r = rng(2);
    for (let i = 0; i < 24; i++) {
      const c = convCase(r, false);
      const x = randn(r, [c.n, c.h, c.w, c.c]),
        w = randn(r, [c.f, c.f, c.c, c.k]);
      const attrs = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC' as const };
      const yShape = tf.backend_util.computeConv2DInfo([c.n, c.h, c.w, c.c], [c.f, c.f, c.c, c.k], c.stride, 1, c.pad).outShape;
      const dy = randn(r, yShape);
      const what = JSON.stringify(c);
      const [refI, gotI] = await both(
        [dy, w],
        (dy, w) =>
          tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: w }, { ...attrs, inputShape: [c.n, c.h, c.w, c.c] }) as tf.Tensor,
      );
      expectClose(refI, gotI, `backprop input ${what}`);
      const [refF, gotF] = await both(
        [x, dy],
        (x, dy) => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, { ...attrs, filterShape: [c.f, c.f, c.c, c.k] }) as tf.Tensor,
      );
      expectClose(refF, gotF, `backprop filter ${what}`);
    }
  });

  // The cpu backend's depthwise backprops ignore dilations, so a dilated case is checked against the
  // undilated kernel with the filter zero-inserted to its effective size (the same convolution).
  it('DepthwiseConv2dNativeBackpropInput and DepthwiseConv2dNativeBackpropFilter', async () => {
    const r = rng(3);
    for (let i = 0; i < 20; i++) {
      const f = pick(r, [1, 3, 5]),
        mul = pick(r, [1, 1, 2]);
      const stride = pick(r, [1, 2]);
      const dilation = stride === 1 && r() < 0.3 ? 2 : 1;
      const eff = (f - 1) * dilation + 1;
      const n = int(r, 1, 2),
        h = int(r, eff, eff + 8),
        w = int(r, eff, eff + 8),
        ch = int(r, 1, 13);
      const pad = randomPad(r, f);
      const yShape = tf.backend_util.computeConv2DInfo([n, h, w, ch], [f, f, ch, mul], stride, dilation, pad, undefined, true).outShape;
      const x = randn(r, [n, h, w, ch]),
        filt = randn(r, [f, f, ch, mul]),
        dy = randn(r, yShape);
      const what = JSON.stringify({ n, h, w, ch, f, mul, stride, dilation, pad });
      const attrs = (d: number) => ({ strides: stride, dilations: d, pad });
      const taps = () => [...Array(f * f).keys()].map((t) => [Math.floor(t / f) * dilation, (t % f) * dilation]);
      // filt zero-inserted to [eff, eff, ch, mul]
      const wide = { shape: [eff, eff, ch, mul], values: new Float32Array(eff * eff * ch * mul) };
      taps().forEach(([a, b], t) => wide.values.set(filt.values.subarray(t * ch * mul, (t + 1) * ch * mul), (a! * eff + b!) * ch * mul));
      const refI = await run(
        'cpu',
        [dy, wide],
        (dy, filter) =>
          tf
            .engine()
            .runKernel(tf.DepthwiseConv2dNativeBackpropInput, { dy, filter }, { ...attrs(1), inputShape: [n, h, w, ch] }) as tf.Tensor,
      );
      const gotI = await run(
        'wasm',
        [dy, filt],
        (dy, filter) =>
          tf
            .engine()
            .runKernel(
              tf.DepthwiseConv2dNativeBackpropInput,
              { dy, filter },
              { ...attrs(dilation), inputShape: [n, h, w, ch] },
            ) as tf.Tensor,
      );
      expectClose(refI, gotI, `depthwise backprop input ${what}`);
      const refWide = await run(
        'cpu',
        [x, dy],
        (x, dy) =>
          tf
            .engine()
            .runKernel(tf.DepthwiseConv2dNativeBackpropFilter, { x, dy }, { ...attrs(1), filterShape: [eff, eff, ch, mul] }) as tf.Tensor,
      );
      const refF = new Float32Array(f * f * ch * mul);
      taps().forEach(([a, b], t) => refF.set(refWide.subarray((a! * eff + b!) * ch * mul, (a! * eff + b! + 1) * ch * mul), t * ch * mul));
      const gotF = await run(
        'wasm',
        [x, dy],
        (x, dy) =>
          tf
            .engine()
            .runKernel(
              tf.DepthwiseConv2dNativeBackpropFilter,
              { x, dy },
              { ...attrs(dilation), filterShape: [f, f, ch, mul] },
            ) as tf.Tensor,
      );
      expectClose(refF, gotF, `depthwise backprop filter ${what}`);
    }
  });

  // The 224-px kernels (issue 15): depthwise forward (multiplier 1 natively, in blocks of 16 channels,
  // so up to 40 channels; multiplier 2 falls back to stock), max-pool gradient (with ties), h-swish and
  // h-sigmoid.
  it('DepthwiseConv2dNative forward: strides, padding, dilation, odd sizes, channel remainders', async () => {
    const r = rng(11);
    for (let i = 0; i < 24; i++) {
      const f = pick(r, [1, 3, 5]),
        mul = pick(r, [1, 1, 1, 2]),
        stride = pick(r, [1, 2]);
      const dilation = stride === 1 && r() < 0.3 ? 2 : 1;
      const eff = (f - 1) * dilation + 1;
      const n = int(r, 1, 3),
        h = int(r, eff, eff + 9),
        w = int(r, eff, eff + 9),
        ch = pick(r, [1, 3, 4, 7, 16, 19, 24, 40]);
      const pad = randomPad(r, f);
      const x = randn(r, [n, h, w, ch]),
        filt = randn(r, [f, f, ch, mul]);
      const what = JSON.stringify({ n, h, w, ch, f, mul, stride, dilation, pad });
      const [ref, got] = await both([x, filt], (x, w) =>
        tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, pad, 'NHWC', dilation),
      );
      expectClose(ref, got, `depthwise forward ${what}`);
    }
  });

  it('MaxPoolGrad: window sizes, strides, padding, odd sizes, tied maxima', async () => {
    const r = rng(12);
    for (let i = 0; i < 20; i++) {
      const f = pick(r, [1, 2, 3]),
        stride = pick(r, [1, 2, 3]),
        pad = pick(r, ['same', 'valid', 0, 1] as const);
      if (typeof pad === 'number' && pad >= f) continue;
      const n = int(r, 1, 3),
        h = int(r, f, f + 9),
        w = int(r, f, f + 9),
        ch = pick(r, [1, 3, 4, 6, 9, 17]);
      const x = randn(r, [n, h, w, ch]);
      // a third of the cases on a coarse grid, so windows hold equal maxima: the first (row-major) one gets the gradient
      if (i % 3 === 0) x.values.forEach((v, j) => (x.values[j] = Math.round(v)));
      const dy = randn(r, tf.backend_util.computePool2DInfo([n, h, w, ch], f, stride, 1, pad).outShape);
      const what = JSON.stringify({ n, h, w, ch, f, stride, pad, ties: i % 3 === 0 });
      const [ref, got] = await both([x, dy], (x, dy) => {
        const y = tf.maxPool(x as tf.Tensor4D, f, stride, pad);
        return tf.engine().runKernel(tf.MaxPoolGrad, { dy, input: x, output: y }, { filterSize: f, strides: stride, pad }) as tf.Tensor;
      });
      expectClose(ref, got, `max-pool gradient ${what}`);
    }
  });

  it('h-swish and h-sigmoid kernels match the composite ops and their gradients (kinks at -3 and 3 included)', async () => {
    const r = rng(13);
    for (const n of [1, 7, 4099, 1 << 13]) {
      const x = randn(r, [n]);
      x.values.forEach((v, j) => (x.values[j] = v * 2));
      [-3, 3, 0, -6, 6].forEach((v, j) => j < n && (x.values[j] = v));
      const dy = randn(r, [n]);
      const hswish = (x: tf.Tensor) => tf.mul(x, tf.div(tf.relu6(tf.add(x, 3)), 6));
      const hsigmoid = (x: tf.Tensor) => tf.div(tf.relu6(tf.add(x, 3)), 6);
      for (const [name, composite] of [
        ['TricksHardSwish', hswish],
        ['TricksHardSigmoid', hsigmoid],
      ] as const) {
        const ref = await run('cpu', [x], composite);
        const got = await run('wasm', [x], (x) => tf.engine().runKernel(name, { x }) as tf.Tensor);
        expectClose(ref, got, `${name} n=${n}`);
        const refG = await run('cpu', [x, dy], (x, dy) => tf.grad(composite)(x, dy));
        const gotG = await run('wasm', [x, dy], (x, dy) => tf.engine().runKernel(`${name}Grad`, { dy, x }) as tf.Tensor);
        expectClose(refG, gotG, `${name}Grad n=${n}`);
      }
    }
  });

  it("squeeze-excitation ops: Sum and Mean over middle axes (and Mean's gradient), x op s with s [N,1,1,C] either side", async () => {
    const r = rng(14);
    for (const shape of [
      [3, 17, 13, 20],
      [2, 40, 41, 7],
      [5, 1, 300, 3],
      [4, 9, 9, 5, 6],
    ]) {
      const x = randn(r, shape);
      const axes = shape.length === 5 ? [1, 2, 3] : [1, 2];
      const sShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const sv = randn(r, sShape);
      const what = JSON.stringify(shape);
      for (const keepDims of [false, true]) {
        const [ref, got] = await both([x], (x) => tf.sum(x, axes, keepDims));
        expectClose(ref, got, `sum ${what} keepDims ${keepDims}`);
        const [refM, gotM] = await both([x], (x) => tf.mean(x, axes, keepDims));
        expectClose(refM, gotM, `mean ${what} keepDims ${keepDims}`);
      }
      const dyM = randn(r, sShape);
      const [refG, gotG] = await both([x, dyM], (x, dy) => tf.grad((x: tf.Tensor) => tf.mean(x, axes, true))(x, dy));
      expectClose(refG, gotG, `mean gradient ${what}`);
      for (const [name, op] of [
        ['mul', tf.mul],
        ['add', tf.add],
        ['sub', tf.sub],
      ] as const) {
        const [ref, got] = await both([x, sv], (x, s) => op(x, s));
        expectClose(ref, got, `${name} x, s ${what}`);
        const [ref2, got2] = await both([x, sv], (x, s) => op(s, x));
        expectClose(ref2, got2, `${name} s, x ${what}`);
      }
    }
  });

  it('UnsortedSegmentSum (the gradient of gather)', async () => {
    const r = rng(4);
    for (let i = 0; i < 6; i++) {
      const rows = int(r, 1, 30),
        inner = int(r, 1, 7),
        segs = int(r, 1, 10);
      const ids = Int32Array.from({ length: rows }, () => int(r, -1, segs)); // -1 and segs are dropped
      const [ref, got] = await both([randn(r, [rows, inner]), { shape: [rows], values: ids }], (x, s) =>
        tf.unsortedSegmentSum(x, s as tf.Tensor1D, segs),
      );
      expectClose(ref, got, `segment sum rows=${rows} inner=${inner} segs=${segs}`);
    }
  });

  it('Sum and Mean over leading axes, Cast, Identity', async () => {
    const r = rng(6);
    for (let i = 0; i < 8; i++) {
      const rank = int(r, 2, 4);
      const shape = Array.from({ length: rank }, () => int(r, 1, 9));
      const k = int(r, 1, rank - 1);
      const axes = [...Array(k).keys()];
      const keepDims = r() < 0.5;
      const x = randn(r, shape);
      const what = `shape ${shape} axes ${axes} keepDims ${keepDims}`;
      const [refS, gotS] = await both([x], (x) => tf.sum(x, axes, keepDims));
      expectClose(refS, gotS, `sum ${what}`);
      const [refM, gotM] = await both([x], (x) => tf.mean(x, axes, keepDims));
      expectClose(refM, gotM, `mean ${what}`);
      const [refC, gotC] = await both([x], (x) => tf.add(tf.cast(x, 'float32'), tf.clone(x)));
      expectClose(refC, gotC, `cast + clone ${what}`);
    }
  });

  it('FusedBatchNorm forward: per-channel statistics with and without offset/scale, and the stock fallback', async () => {
    const r = rng(8);
    for (const shape of [
      [3, 5, 4, 6],
      [2, 7],
      [600, 9],
      [2, 3, 3, 13],
    ]) {
      const C = shape[shape.length - 1]!;
      const x = randn(r, shape),
        mean = randn(r, [C]),
        gamma = randn(r, [C]),
        beta = randn(r, [C]);
      const variance = { shape: [C], values: randn(r, [C]).values.map((v) => v * v + 0.1) };
      const what = `batch norm forward ${shape}`;
      const [ref, got] = await both([x, mean, variance, beta, gamma], (x, m, v, b, g) => tf.batchNorm(x!, m!, v!, b, g, 1e-3));
      expectClose(ref, got, what);
      const [ref2, got2] = await both([x, mean, variance], (x, m, v) => tf.batchNorm(x!, m!, v!, undefined, undefined, 1e-5));
      expectClose(ref2, got2, `${what} without offset and scale`);
      // statistics with the full shape of x: not per channel, so the stock kernel runs
      const [ref3, got3] = await both([x, x, variance], (x, m, v) =>
        tf.batchNorm(x!, m!, tf.add(tf.mul(m!, 0), tf.mean(v!)), undefined, undefined, 1e-3),
      );
      expectClose(ref3, got3, `${what} with full-shape statistics`);
    }
  });

  it('Add, Sub, Multiply (same shape, per-channel either side, other broadcasts) and the relu gradient', async () => {
    const r = rng(9);
    const big = [8, 96, 96, 16],
      C = 16; // 1.18M elements: above the threaded kernels' threshold
    const x = randn(r, big),
      y = randn(r, big),
      row = randn(r, [C]),
      row4 = randn(r, [1, 1, 1, C]),
      col = randn(r, [8, 1, 1, 1]);
    const ops = { add: tf.add, sub: tf.sub, mul: tf.mul } as const;
    for (const [name, op] of Object.entries(ops)) {
      for (const [label, a, b] of [
        ['same shape', x, y],
        ['per-channel b', x, row],
        ['per-channel b rank 4', x, row4],
        ['per-channel a', row, x],
        ['other broadcast', x, col],
        ['small', row, row],
      ] as const) {
        const [ref, got] = await both([a, b], (a, b) => op(a!, b!));
        expectClose(ref, got, `${name} ${label}`);
      }
    }
    const xn = { shape: big, values: x.values.map((v, i) => (i % 997 === 0 ? NaN : v)) };
    const [ref, got] = await both([xn, y], (x, dy) => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.relu(x), dy!)))(x!));
    expect(Array.from(got).map(Number.isNaN), 'NaN inputs give NaN gradients, as on cpu').to.deep.equal(Array.from(ref).map(Number.isNaN));
    expectClose(
      ref.map((v) => (Number.isNaN(v) ? 0 : v)),
      got.map((v) => (Number.isNaN(v) ? 0 : v)),
      'relu gradient',
    );
  });

  it('BatchMatMul with every transpose, batched, and the stock fallbacks (broadcast batch, small)', async () => {
    const r = rng(10);
    for (const [M, K, N, batch] of [
      [70, 90, 80, []],
      [64, 576, 1024, []],
      [33, 40, 65, [3]],
      [5, 7, 9, [2]],
    ] as [number, number, number, number[]][]) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const a = randn(r, [...batch, ...(ta ? [K, M] : [M, K])]),
            b = randn(r, [...batch, ...(tb ? [N, K] : [K, N])]);
          const [ref, got] = await both([a, b], (a, b) => tf.matMul(a!, b!, ta, tb));
          expectClose(ref, got, `matMul ${M}x${K}x${N} batch ${batch} transposeA ${ta} transposeB ${tb}`);
        }
      }
    }
    const [ref, got] = await both([randn(r, [1, 60, 70]), randn(r, [4, 70, 50])], (a, b) => tf.matMul(a!, b!));
    expectClose(ref, got, 'matMul with a broadcast batch');
  });

  it('batch-norm and mean gradients (as tfjs-layers BatchNormalization trains)', async () => {
    const r = rng(7);
    for (const shape of [
      [3, 5, 4, 6],
      [2, 7],
      [4, 3, 3, 13],
    ]) {
      const C = shape[shape.length - 1]!;
      const axes = [...Array(shape.length - 1).keys()];
      const x = randn(r, shape),
        gamma = randn(r, [C]),
        beta = randn(r, [C]),
        dy = randn(r, shape);
      const f = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, dy: tf.Tensor) => {
        const { mean, variance } = tf.moments(x, axes);
        return tf.sum(tf.mul(tf.batchNorm(x, mean, variance, beta, gamma, 1e-3), dy));
      };
      for (let arg = 0; arg < 3; arg++) {
        const [ref, got] = await both([x, gamma, beta, dy], (...ts) => tf.grads((x, g, b) => f(x!, g!, b!, ts[3]!))(ts.slice(0, 3))[arg]!);
        expectClose(ref, got, `batch norm ${shape} gradient of argument ${arg}`);
      }
    }
  });

  it('BatchNormalization layers train through the one-op path on wasm: output, moving statistics and gradients as tfjs-layers on cpu', async () => {
    const r = rng(11);
    for (const [shape, momentum] of [
      [[3, 5, 4, 6], 0.99],
      [[6, 9], 0.9],
      [[2, 7, 7, 13], 0.5],
    ] as [number[], number][]) {
      const C = shape[shape.length - 1]!;
      const x = randn(r, shape),
        dy = randn(r, shape),
        gamma = randn(r, [C]),
        beta = randn(r, [C]),
        mm = randn(r, [C]),
        mv = { shape: [C], values: Float32Array.from(randn(r, [C]).values, Math.abs) };
      const outs: Record<string, Float32Array[]> = {};
      for (const backend of ['cpu', 'wasm']) {
        await tf.setBackend(backend);
        const before = tf.memory().numTensors;
        const layer = tfl.layers.batchNormalization({ momentum, epsilon: 1e-3 });
        layer.build(shape);
        const init = [gamma, beta, mm, mv].map((t) => tf.tensor(t.values, t.shape));
        layer.setWeights(init);
        tf.dispose(init);
        const [xt, dyt] = [x, dy].map((t) => tf.tensor(t.values, t.shape));
        const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
        const { value, grads: g } = tf.variableGrads(
          () => tf.sum(tf.mul(layer.apply(xt!, { training: true }) as tf.Tensor, dyt!)) as tf.Scalar,
          vars,
        );
        const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx, { training: true }) as tf.Tensor, dyt!)))(xt!);
        const y = layer.apply(xt!, { training: false }) as tf.Tensor;
        outs[backend] = [
          await value.data(),
          await dx.data(),
          ...(await Promise.all(vars.map((v) => g[v.name]!.data()))),
          ...(await Promise.all(
            layer
              .getWeights()
              .slice(2)
              .map((w) => w.data()),
          )),
          await y.data(),
        ].map((a) => Float32Array.from(a as Float32Array));
        tf.dispose([value, dx, y, ...Object.values(g)]);
        tf.dispose([xt!, dyt!]);
        layer.weights.forEach((w) => w.dispose());
        expect(tf.memory().numTensors, `${backend} ${shape}: tensors left`).to.equal(before);
      }
      ['loss', 'dx', 'dgamma', 'dbeta', 'moving mean', 'moving variance', 'inference output'].forEach((what, i) =>
        expectClose(outs.cpu![i]!, outs.wasm![i]!, `${shape}: ${what}`),
      );
    }
  });

  it('tf.grad through conv, depthwise, gather and pooling agrees end to end', async () => {
    const r = rng(5);
    const x = randn(r, [2, 9, 9, 8]),
      w1 = randn(r, [3, 3, 8, 12]),
      dw = randn(r, [3, 3, 12, 1]),
      w2 = randn(r, [1, 1, 12, 8]),
      table = randn(r, [5, 8]);
    const idx = { shape: [4], values: Int32Array.from([0, 3, 3, 4]) };
    const loss = (x: tf.Tensor, w1: tf.Tensor, dw: tf.Tensor, w2: tf.Tensor, table: tf.Tensor, idx: tf.Tensor) => {
      let y: tf.Tensor4D = tf.relu(tf.conv2d(x as tf.Tensor4D, w1 as tf.Tensor4D, 1, 'same'));
      y = tf.depthwiseConv2d(y, dw as tf.Tensor4D, 2, 'same');
      y = tf.conv2d(y, w2 as tf.Tensor4D, 1, 'valid');
      const pooled = tf.mean(y, [1, 2]);
      const bias = tf.sum(tf.gather(table, idx as tf.Tensor1D), 0);
      return tf.sum(tf.square(tf.add(pooled, bias)));
    };
    for (let arg = 0; arg < 5; arg++) {
      const [ref, got] = await both(
        [x, w1, dw, w2, table, idx],
        (...ts) => tf.grads((...vs: tf.Tensor[]) => loss(...(vs.concat(ts.slice(5)) as Parameters<typeof loss>)))(ts.slice(0, 5))[arg]!,
      );
      expectClose(ref, got, `gradient of argument ${arg}`);
    }
  });

  it('a training step of a conv + batch-norm model leaks no tensors', async () => {
    await tf.setBackend('wasm');
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [8, 8, 8], filters: 8, kernelSize: 3, padding: 'same', useBias: false }),
        tfl.layers.batchNormalization(),
        tfl.layers.reLU(),
        tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same' }),
        tfl.layers.globalAveragePooling2d({}),
        tfl.layers.dense({ units: 3 }),
      ],
    });
    const x = tf.randomNormal([4, 8, 8, 8]);
    const opt = tf.train.sgd(0.01);
    const step = () =>
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => tf.sum(tf.square(model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar);
        opt.applyGradients(grads);
      });
    step();
    const before = tf.memory();
    step();
    step();
    const after = tf.memory();
    expect(after.numTensors).to.equal(before.numTensors);
    expect(after.numBytes).to.equal(before.numBytes);
    tf.dispose(x);
    model.layers.forEach((l) => l.dispose());
  });

  it('the one-pass SGD, Adam and AdamW steps are bit-identical to the unfused updates (momentum, nesterov, decay, none), leak nothing', async () => {
    await tf.setBackend('wasm');
    const r = rng(7);
    const shapes = [[37], [3, 3, 64, 64]]; // a SIMD remainder; several parts on the kernel threads
    const cases: [string, () => TricksOptimizer, number][] = [
      // [kernel, optimizer, slots]
      [SGD_STEP_KERNEL, () => new SGD({ lr: 0.1, momentum: 0.9, weightDecay: 5e-4 }), 1],
      [SGD_STEP_KERNEL, () => new SGD({ lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 }), 1],
      [SGD_STEP_KERNEL, () => new SGD({ lr: 0.1, momentum: 0, weightDecay: 5e-4 }), 0],
      [SGD_STEP_KERNEL, () => new SGD({ lr: 0.1, momentum: 0.8 }), 1],
      [ADAM_STEP_KERNEL, () => new Adam({ lr: 0.1, weightDecay: 0.02 }), 2],
      [ADAM_STEP_KERNEL, () => new Adam({ lr: 0.1, beta1: 0.8, beta2: 0.99, eps: 1e-6 }), 2],
      [ADAM_STEP_KERNEL, () => new AdamW({ lr: 0.1, weightDecay: 0.05 }), 2],
    ];
    let id = 0;
    for (const [kernel, make, slots] of cases) {
      const fused = tf.getKernel(kernel, 'wasm')!;
      expect(fused, `${kernel} registered`).to.exist;
      const opts = make().getConfig();
      for (const shape of shapes) {
        const n = shape.reduce((a, b) => a * b);
        const w0 = Float32Array.from({ length: n }, () => r() * 2 - 1);
        const grads = [0, 1, 2].map(() => Float32Array.from({ length: n }, () => (r() * 2 - 1) * 0.1));
        const run = async (withKernel: boolean): Promise<Float32Array[]> => {
          if (!withKernel) tf.unregisterKernel(kernel, 'wasm');
          try {
            const w = tf.variable(tf.tensor(w0, shape), true, `sgdfused${id++}`);
            const opt = make();
            const start = tf.memory().numTensors;
            grads.forEach((g, s) => {
              opt.setLearningRate([0.1, 0.05, 0.025][s]!);
              const gt = tf.tensor(g, shape);
              opt.applyGradients({ [w.name]: gt });
              gt.dispose();
            });
            expect(tf.memory().numTensors, 'tensors after 3 steps').to.equal(start + slots);
            const out = [
              w.dataSync() as Float32Array,
              ...(await opt.getWeights()).slice(1).map((s) => s.tensor.dataSync() as Float32Array),
            ]; // [iterations, ...slots]
            opt.dispose();
            w.dispose();
            return out;
          } finally {
            if (!withKernel) tf.registerKernel(fused);
          }
        };
        const [got, ref] = [await run(true), await run(false)];
        expect(got.length, 'weights and slots').to.equal(1 + slots);
        expect(ref.length, 'weights and slots').to.equal(1 + slots);
        got.forEach((g, i) =>
          expect(Buffer.from(g.buffer).equals(Buffer.from(ref[i]!.buffer)), `${JSON.stringify(opts)} ${shape} output ${i}`).to.equal(true),
        );
      }
    }
  });
});
