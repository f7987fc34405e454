// DepthwiseConv2dNativeBackpropInput and DepthwiseConv2dNativeBackpropFilter for the wasm backend
// (it has neither), as direct loops vectorized over channels (native/kernels.c), split across the
// kernel threads: the input gradient by images, the filter gradient by filter taps.
import {
  backend_util,
  DepthwiseConv2dNativeBackpropFilter,
  DepthwiseConv2dNativeBackpropInput,
  type DepthwiseConv2dNativeBackpropFilterAttrs,
  type DepthwiseConv2dNativeBackpropInputAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { Native, type KernelArgs } from './native.js';
import { Threads } from './threads.js';

type Shape4 = [number, number, number, number];
type Attrs = DepthwiseConv2dNativeBackpropInputAttrs | DepthwiseConv2dNativeBackpropFilterAttrs;

function info(xShape: number[], fShape: number[], attrs: Attrs): backend_util.Conv2DInfo {
  return backend_util.computeConv2DInfo(
    xShape as Shape4,
    fShape as Shape4,
    attrs.strides,
    attrs.dilations,
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
  th.run(th.ranges(ci.filterHeight * ci.filterWidth).map(([a, b]) => ['dw_grad_filter', [xP, dyP, dfP, ...dims(ci), a, b]]));
  return df;
}

export const depthwiseConfigs: KernelConfig[] = [
  { kernelName: DepthwiseConv2dNativeBackpropInput, backendName: 'wasm', kernelFunc: backpropInput },
  { kernelName: DepthwiseConv2dNativeBackpropFilter, backendName: 'wasm', kernelFunc: backpropFilter },
];
