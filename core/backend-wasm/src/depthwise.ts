// DepthwiseConv2dNativeBackpropInput and DepthwiseConv2dNativeBackpropFilter for the wasm backend
// (it has neither), and DepthwiseConv2dNative in place of the stock one-thread kernel, as direct
// loops vectorized over channels (native/kernels.c), split across the kernel threads: the forward
// pass by output rows, the input gradient by images, the filter gradient by channels (multiplier
// 1: one pass over dy for all taps) or by filter taps (other multipliers).
import {
  backend_util,
  DepthwiseConv2dNative,
  DepthwiseConv2dNativeBackpropFilter,
  DepthwiseConv2dNativeBackpropInput,
  type DepthwiseConv2dNativeBackpropFilterAttrs,
  type DepthwiseConv2dNativeAttrs,
  type DepthwiseConv2dNativeBackpropInputAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { Native, type KernelArgs } from './native.js';
import { Threads } from './threads.js';

type Shape4 = [number, number, number, number];
type Attrs = DepthwiseConv2dNativeAttrs | DepthwiseConv2dNativeBackpropInputAttrs | DepthwiseConv2dNativeBackpropFilterAttrs;

function info(xShape: number[], fShape: number[], attrs: Attrs): backend_util.Conv2DInfo {
  return backend_util.computeConv2DInfo(
    xShape as Shape4,
    fShape as Shape4,
    attrs.strides,
    attrs.dilations ?? 1, // tfjs-layers passes null
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
}

/** The shape arguments shared by both native kernels, after the three pointers. */
function dims(ci: backend_util.Conv2DInfo): number[] {
  return [
    ci.batchSize,
    ci.inHeight,
    ci.inWidth,
    ci.inChannels,
    ci.outChannels / ci.inChannels,
    ci.outHeight,
    ci.outWidth,
    ci.filterHeight,
    ci.filterWidth,
    ci.strideHeight,
    ci.strideWidth,
    ci.dilationHeight,
    ci.dilationWidth,
    ci.padInfo.top,
    ci.padInfo.left,
  ];
}

function backpropInput(args: Parameters<KernelFunc>[0]): TensorInfo {
  const { inputs, backend, attrs } = args as unknown as KernelArgs<'dy' | 'filter', DepthwiseConv2dNativeBackpropInputAttrs>;
  const { dy, filter } = inputs;
  const ci = info(attrs.inputShape, filter.shape, attrs);
  const nat = Native.of(backend),
    th = Threads.of(nat);
  const dx = backend.makeOutput(ci.inShape, 'float32');
  const dyP = nat.ptr(dy),
    fP = nat.ptr(filter),
    dxP = nat.ptr(dx);
  const dyImage = ci.outHeight * ci.outWidth * ci.outChannels,
    dxImage = ci.inHeight * ci.inWidth * ci.inChannels;
  th.run(
    th
      .ranges(ci.batchSize)
      .map(([a, b]) => ['dw_grad_input', [dyP + 4 * a * dyImage, fP, dxP + 4 * a * dxImage, b - a, ...dims(ci).slice(1)]]),
  );
  return dx;
}

function backpropFilter(args: Parameters<KernelFunc>[0]): TensorInfo {
  const { inputs, backend, attrs } = args as unknown as KernelArgs<'x' | 'dy', DepthwiseConv2dNativeBackpropFilterAttrs>;
  const { x, dy } = inputs;
  const ci = info(x.shape, attrs.filterShape, attrs);
  const nat = Native.of(backend),
    th = Threads.of(nat);
  const df = backend.makeOutput(attrs.filterShape, 'float32');
  const xP = nat.ptr(x),
    dyP = nat.ptr(dy),
    dfP = nat.ptr(df);
  if (ci.outChannels === ci.inChannels) {
    // channel ranges in whole vectors of 4
    const d = dims(ci);
    th.run(
      th
        .ranges(Math.ceil(ci.inChannels / 4))
        .map(([a, b]) => ['dw_grad_filter1', [xP, dyP, dfP, ...d.slice(0, 4), ...d.slice(5), 4 * a, Math.min(ci.inChannels, 4 * b)]]),
    );
    return df;
  }
  th.run(th.ranges(ci.filterHeight * ci.filterWidth).map(([a, b]) => ['dw_grad_filter', [xP, dyP, dfP, ...dims(ci), a, b]]));
  return df;
}

/** Forward depthwise convolution, channel multiplier 1, NHWC; other shapes: the stock kernel. */
function forwardFunc(stock: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as KernelArgs<'x' | 'filter', DepthwiseConv2dNativeAttrs>;
    const { x, filter } = inputs;
    if (x.dtype !== 'float32' || filter.shape[3] !== 1 || (attrs.dataFormat ?? 'NHWC') !== 'NHWC') return stock(args);
    const ci = info(x.shape, filter.shape, attrs);
    const nat = Native.of(backend),
      th = Threads.of(nat);
    const y = backend.makeOutput(ci.outShape, 'float32');
    const d = dims(ci);
    const [xP, fP, yP] = [nat.ptr(x), nat.ptr(filter), nat.ptr(y)];
    th.run(th.ranges(ci.batchSize * ci.outHeight).map(([a, b]) => ['dw_conv', [xP, fP, 0, yP, ...d.slice(0, 4), ...d.slice(5), 0, a, b]]));
    return y;
  };
}

export function depthwiseConfigs(stock: (name: string) => KernelConfig | undefined): KernelConfig[] {
  const configs: KernelConfig[] = [
    { kernelName: DepthwiseConv2dNativeBackpropInput, backendName: 'wasm', kernelFunc: backpropInput },
    { kernelName: DepthwiseConv2dNativeBackpropFilter, backendName: 'wasm', kernelFunc: backpropFilter },
  ];
  const fwd = stock(DepthwiseConv2dNative);
  if (fwd) configs.push({ ...fwd, kernelFunc: forwardFunc(fwd.kernelFunc) });
  return configs;
}
