// Conv2D, FusedConv2D, Conv2DBackpropInput and Conv2DBackpropFilter for the wasm backend.
//
// 3x3 stride-1 convolutions (nearly all the FLOPs of a ResNet) run as Winograd F(4x4, 3x3):
// 36 GEMMs of a quarter of the direct convolution's multiplications, plus cheap transforms. The
// backprop-input pass is the same convolution over dy with the flipped, transposed filter; the
// backprop-filter pass is the transposed Winograd product. Every other forward convolution and
// filter gradient is im2col + one GEMM; every other input gradient is one GEMM into columns,
// added back onto the strided, padded, dilated input (col2im). All of them split across the kernel threads (threads.ts).
import {
  backend_util,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  FusedConv2D,
  type Conv2DAttrs,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropInputAttrs,
  type FusedConv2DAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { Native, type KernelArgs } from './native.js';
import { Threads } from './threads.js';

type ConvInfo = backend_util.Conv2DInfo;

/**
 * Plane stride of a [36][n] Winograd buffer: n rounded up and padded by one cache line, so that
 * the 36 planes a tile touches do not share cache sets (power-of-two strides made the transforms
 * several times slower).
 */
const plane = (n: number): number => Math.ceil(n / 16) * 16 + 16;

/** Below this many input or output channels the transforms cost more than Winograd saves. */
const WINOGRAD_MIN_CHANNELS = 8;

export function winogradApplies(ci: ConvInfo): boolean {
  return (
    ci.filterHeight === 3 &&
    ci.filterWidth === 3 &&
    ci.strideHeight === 1 &&
    ci.strideWidth === 1 &&
    ci.dilationHeight === 1 &&
    ci.dilationWidth === 1 &&
    ci.dataFormat === 'channelsLast' &&
    ci.inChannels >= WINOGRAD_MIN_CHANNELS &&
    ci.outChannels >= WINOGRAD_MIN_CHANNELS
  );
}

function info(xShape: number[], fShape: number[], attrs: Conv2DAttrs | Conv2DBackpropInputAttrs | Conv2DBackpropFilterAttrs): ConvInfo {
  const dilations = 'dilations' in attrs ? attrs.dilations : 1;
  return backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    fShape as [number, number, number, number],
    attrs.strides,
    dilations,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(attrs.dataFormat),
  );
}

/**
 * Winograd 3x3 stride-1 convolution of x [N,H,W,Cin] into out [N,OH,OW,Cout] with top/left padding
 * padT/padL. With flip, g is the filter [3,3,Cout,Cin] of the forward convolution whose input
 * gradient this is (used flipped and transposed); otherwise g is [3,3,Cin,Cout].
 */
function winogradConv(
  nat: Native,
  x: number,
  N: number,
  H: number,
  W: number,
  Cin: number,
  g: number,
  Cout: number,
  flip: boolean,
  padT: number,
  padL: number,
  out: number,
  OH: number,
  OW: number,
  bias = 0,
  relu = false,
): void {
  const th = Threads.of(nat);
  const tilesH = Math.ceil(OH / 4),
    tilesW = Math.ceil(OW / 4);
  const T = N * tilesH * tilesW,
    tpi = tilesH * tilesW;
  const pU = plane(Cin * Cout),
    pV = plane(T * Cin),
    pM = plane(T * Cout),
    gs = Native.gemmScratch(Cout);
  const images = th.ranges(N);
  nat.withScratch([36 * pU, 36 * pV, 36 * pM, gs * th.count], (U, V, M, S) => {
    // split over the Cin rows of each U plane ([36][Cin][Cout] in both cases)
    th.run(th.ranges(Cin).map(([a, b]) => ['wino_filter', flip ? [g, U, Cout, Cin, 1, pU, a, b] : [g, U, Cin, Cout, 0, pU, a, b]]));
    th.run(
      images.map(([a, b]) => [
        'wino_input',
        [x + 4 * a * H * W * Cin, V + 4 * a * tpi * Cin, b - a, H, W, Cin, padT, padL, tilesH, tilesW, pV],
      ]),
    );
    th.sgemm(36, T, Cout, Cin, V, Cin, 1, pV, U, Cout, 1, pU, M, Cout, pM, 0, S, gs);
    th.run(
      images.map(([a, b]) => [
        'wino_output',
        [M + 4 * a * tpi * Cout, out + 4 * a * OH * OW * Cout, b - a, OH, OW, Cout, tilesH, tilesW, bias, relu ? 1 : 0, pM],
      ]),
    );
  });
}

/** Floats of im2col buffer per chunk of images: bounds the scratch of large inputs (64 MB). */
const IM2COL_FLOATS = 1 << 24;

/**
 * im2col of x in chunks of images (IM2COL_FLOATS bounds the buffer; a 1x1 stride-1 unpadded
 * convolution needs none and uses x itself), on every kernel thread: `use(A, n0, n, S)` gets each
 * chunk's rows [n*OH*OW, FH*FW*Cin] and `gemmScratch` floats of GEMM scratch per thread.
 */
function im2colChunks(
  nat: Native,
  ci: ConvInfo,
  x: number,
  gemmScratch: number,
  use: (A: number, n0: number, n: number, S: number) => void,
): void {
  const th = Threads.of(nat);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = ci;
  const depth = ci.filterHeight * ci.filterWidth * C,
    rowsPerImage = OH * OW;
  const pointwise = isPointwiseIdentity(ci);
  const chunk = pointwise ? N : Math.max(1, Math.min(N, Math.floor(IM2COL_FLOATS / (rowsPerImage * depth))));
  nat.withScratch([pointwise ? 0 : chunk * rowsPerImage * depth, gemmScratch * th.count], (cols, S) => {
    for (let n0 = 0; n0 < N; n0 += chunk) {
      const n = Math.min(chunk, N - n0),
        xn = x + 4 * n0 * H * W * C;
      if (!pointwise) {
        th.run(
          th
            .ranges(n)
            .map(([a, b]) => [
              'im2col',
              [
                xn + 4 * a * H * W * C,
                cols + 4 * a * rowsPerImage * depth,
                b - a,
                H,
                W,
                C,
                OH,
                OW,
                ci.filterHeight,
                ci.filterWidth,
                ci.padInfo.top,
                ci.padInfo.left,
                ci.strideHeight,
                ci.strideWidth,
                ci.dilationHeight,
                ci.dilationWidth,
              ],
            ]),
        );
      }
      use(pointwise ? xn : cols, n0, n, S);
    }
  });
}

/** Any other NHWC convolution: im2col + one GEMM against the HWIO filter viewed as [FH*FW*Cin, Cout]. */
function gemmConv(nat: Native, ci: ConvInfo, x: number, filter: number, out: number, bias = 0, relu = false): void {
  const th = Threads.of(nat);
  const K = ci.outChannels,
    depth = ci.filterHeight * ci.filterWidth * ci.inChannels,
    rowsPerImage = ci.outHeight * ci.outWidth;
  const gs = Native.gemmScratch(K);
  im2colChunks(nat, ci, x, gs, (A, n0, n, S) => {
    const rows = n * rowsPerImage,
      yn = out + 4 * n0 * rowsPerImage * K;
    th.sgemm(1, rows, K, depth, A, depth, 1, 0, filter, K, 1, 0, yn, K, 0, 0, S, gs);
    if (bias !== 0 || relu) {
      th.run(th.ranges(rows).map(([a, b]) => ['bias_act', [yn + 4 * a * K, bias, b - a, K, relu ? 1 : 0]]));
    }
  });
}

/**
 * Every other NHWC convolution takes the GEMM path: measured faster than stock XNNPACK on one thread
 * for ResNet's strided 3x3 (52-57 ms against 65), its 1x1 shortcuts and its stem (docs/backends.md),
 * and it splits across the kernel threads.
 */
function gemmConvApplies(ci: ConvInfo): boolean {
  return ci.dataFormat === 'channelsLast';
}

function conv2dFunc(stock: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as KernelArgs<'x' | 'filter', Conv2DAttrs>;
    const { x, filter } = inputs;
    const ci = info(x.shape, filter.shape, attrs);
    const nat = Native.of(backend);
    const wino = winogradApplies(ci);
    if (!wino && !gemmConvApplies(ci)) return stock(args);
    const out = backend.makeOutput(ci.outShape, 'float32');
    if (wino) {
      winogradConv(
        nat,
        nat.ptr(x),
        ci.batchSize,
        ci.inHeight,
        ci.inWidth,
        ci.inChannels,
        nat.ptr(filter),
        ci.outChannels,
        false,
        ci.padInfo.top,
        ci.padInfo.left,
        nat.ptr(out),
        ci.outHeight,
        ci.outWidth,
      );
    } else {
      gemmConv(nat, ci, nat.ptr(x), nat.ptr(filter), nat.ptr(out));
    }
    return out;
  };
}

function fusedConv2dFunc(stock: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as KernelArgs<'x' | 'filter', FusedConv2DAttrs>;
    const { x, filter, bias } = inputs;
    const ci = info(x.shape, filter.shape, attrs);
    const activation = attrs.activation ?? 'linear';
    const biasOk = bias == null || (bias.shape.length === 1 && bias.shape[0] === ci.outChannels);
    const nat = Native.of(backend);
    const wino = winogradApplies(ci);
    if ((!wino && !gemmConvApplies(ci)) || !biasOk || (activation !== 'linear' && activation !== 'relu')) {
      return stock(args);
    }
    const out = backend.makeOutput(ci.outShape, 'float32');
    const b = bias == null ? 0 : nat.ptr(bias),
      relu = activation === 'relu';
    if (wino) {
      winogradConv(
        nat,
        nat.ptr(x),
        ci.batchSize,
        ci.inHeight,
        ci.inWidth,
        ci.inChannels,
        nat.ptr(filter),
        ci.outChannels,
        false,
        ci.padInfo.top,
        ci.padInfo.left,
        nat.ptr(out),
        ci.outHeight,
        ci.outWidth,
        b,
        relu,
      );
    } else {
      gemmConv(nat, ci, nat.ptr(x), nat.ptr(filter), nat.ptr(out), b, relu);
    }
    return out;
  };
}

/** dx = col2im(dy . W^T): every tap's columns added back onto the tap's shifted view of x. */
function backpropInputFunc(args: Parameters<KernelFunc>[0]): TensorInfo {
  const { inputs, backend, attrs } = args as unknown as KernelArgs<'dy' | 'filter', Conv2DBackpropInputAttrs>;
  const { dy, filter } = inputs;
  const ci = info(attrs.inputShape, filter.shape, attrs);
  checkNHWC(ci, Conv2DBackpropInput);
  const nat = Native.of(backend);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, outChannels: K } = ci;
  const dx = backend.makeOutput(ci.inShape, 'float32');
  const dxP = nat.ptr(dx),
    dyP = nat.ptr(dy),
    fP = nat.ptr(filter);
  if (winogradApplies(ci)) {
    // dx = dy (*) rot180(W)^T, padded so that its output has the input's size.
    winogradConv(nat, dyP, N, OH, OW, K, fP, C, true, 2 - ci.padInfo.top, 2 - ci.padInfo.left, dxP, H, W);
    return dx;
  }
  const { filterHeight: FH, filterWidth: FW, strideHeight: sH, strideWidth: sW } = ci;
  const rows = N * OH * OW;
  const th = Threads.of(nat),
    gs = Native.gemmScratch(C);
  if (isPointwiseIdentity(ci)) {
    nat.withScratch([gs * th.count], (S) => th.sgemm(1, rows, C, K, dyP, K, 1, 0, fP, 1, K, 0, dxP, C, 0, 0, S, gs));
    return dx;
  }
  // col2im: cols [rows, FH*FW*C] = dy . W^T (the HWIO filter seen as [FH*FW*C, K], transposed), then
  // every tap's columns added onto its strided, padded view of dx; in chunks of images (as im2col).
  // One GEMM N = FH*FW*C wide: a GEMM per tap was N = C wide, which for the 3-channel stem of a
  // 224-px ResNet ran on 3 of 8 panel columns (402 ms at batch 16, most of it wasted).
  const depth = FH * FW * C,
    rowsPerImage = OH * OW;
  const gd = Native.gemmScratch(depth);
  const chunk = Math.max(1, Math.min(N, Math.floor(IM2COL_FLOATS / (rowsPerImage * depth))));
  nat.withScratch([chunk * rowsPerImage * depth, gd * th.count], (cols, S) => {
    for (let n0 = 0; n0 < N; n0 += chunk) {
      const n = Math.min(chunk, N - n0);
      th.sgemm(1, n * rowsPerImage, depth, K, dyP + 4 * n0 * rowsPerImage * K, K, 1, 0, fP, 1, K, 0, cols, depth, 0, 0, S, gd);
      th.run(
        th
          .ranges(n)
          .map(([a, b]) => [
            'col2im',
            [
              cols + 4 * a * rowsPerImage * depth,
              dxP + 4 * (n0 + a) * H * W * C,
              b - a,
              H,
              W,
              C,
              OH,
              OW,
              FH,
              FW,
              ci.padInfo.top,
              ci.padInfo.left,
              sH,
              sW,
              ci.dilationHeight,
              ci.dilationWidth,
            ],
          ]),
      );
    }
  });
  return dx;
}

/** dW = im2col(x)^T . dy, or the Winograd transposed product for 3x3/1. */
function backpropFilterFunc(args: Parameters<KernelFunc>[0]): TensorInfo {
  const { inputs, backend, attrs } = args as unknown as KernelArgs<'x' | 'dy', Conv2DBackpropFilterAttrs>;
  const { x, dy } = inputs;
  const ci = info(x.shape, attrs.filterShape, attrs);
  checkNHWC(ci, Conv2DBackpropFilter);
  const nat = Native.of(backend);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, outChannels: K } = ci;
  const dw = backend.makeOutput(ci.filterShape, 'float32');
  const dwP = nat.ptr(dw),
    xP = nat.ptr(x),
    dyP = nat.ptr(dy);
  if (winogradApplies(ci)) {
    const tilesH = Math.ceil(OH / 4),
      tilesW = Math.ceil(OW / 4);
    const T = N * tilesH * tilesW;
    const pV = plane(T * C),
      pZ = plane(T * K),
      pU = plane(C * K),
      tpi = tilesH * tilesW;
    const th = Threads.of(nat),
      gs = Native.gemmScratch(K),
      images = th.ranges(N);
    nat.withScratch([36 * pV, 36 * pZ, 36 * pU, gs * th.count], (V, Z, dU, S) => {
      th.run(
        images.map(([a, b]) => [
          'wino_input',
          [xP + 4 * a * H * W * C, V + 4 * a * tpi * C, b - a, H, W, C, ci.padInfo.top, ci.padInfo.left, tilesH, tilesW, pV],
        ]),
      );
      th.run(
        images.map(([a, b]) => [
          'wino_grad_output',
          [dyP + 4 * a * OH * OW * K, Z + 4 * a * tpi * K, b - a, OH, OW, K, tilesH, tilesW, pZ],
        ]),
      );
      th.sgemm(36, C, K, T, V, 1, C, pV, Z, K, 1, pZ, dU, K, pU, 0, S, gs);
      th.run(th.ranges(Math.ceil((C * K) / 4)).map(([a, b]) => ['wino_filter_grad', [dU, dwP, C, K, pU, 4 * a, Math.min(C * K, 4 * b)]]));
    });
    return dw;
  }
  // im2col (as the forward pass) + one GEMM reducing over every output pixel: dW viewed as
  // [FH*FW*Cin, Cout] = cols^T . dy, accumulated over the chunks of images.
  const th = Threads.of(nat),
    gs = Native.gemmScratch(K),
    depth = ci.filterHeight * ci.filterWidth * C;
  im2colChunks(nat, ci, xP, gs, (A, n0, n, S) =>
    th.sgemm(1, depth, K, n * OH * OW, A, 1, depth, 0, dyP + 4 * n0 * OH * OW * K, K, 1, 0, dwP, K, 0, n0 > 0 ? 1 : 0, S, gs),
  );
  return dw;
}

/** A 1x1 stride-1 unpadded convolution: x viewed as [N*H*W, C] is its own (only) tap. */
function isPointwiseIdentity(ci: ConvInfo): boolean {
  return (
    ci.filterHeight === 1 &&
    ci.filterWidth === 1 &&
    ci.strideHeight === 1 &&
    ci.strideWidth === 1 &&
    ci.padInfo.top === 0 &&
    ci.padInfo.left === 0 &&
    ci.outHeight === ci.inHeight &&
    ci.outWidth === ci.inWidth
  );
}

function checkNHWC(ci: ConvInfo, kernel: string): void {
  if (ci.dataFormat !== 'channelsLast') {
    throw new Error(`wasm backend ${kernel}: dataFormat NCHW is not supported; use NHWC (channelsLast)`);
  }
}

export function conv2dConfigs(stock: (name: string) => KernelConfig | undefined): KernelConfig[] {
  const configs: KernelConfig[] = [
    { kernelName: Conv2DBackpropInput, backendName: 'wasm', kernelFunc: backpropInputFunc },
    { kernelName: Conv2DBackpropFilter, backendName: 'wasm', kernelFunc: backpropFilterFunc },
  ];
  const conv = stock(Conv2D);
  if (conv) configs.push({ ...conv, kernelFunc: conv2dFunc(conv.kernelFunc) });
  const fused = stock(FusedConv2D);
  if (fused) configs.push({ ...fused, kernelFunc: fusedConv2dFunc(fused.kernelFunc) });
  return configs;
}
