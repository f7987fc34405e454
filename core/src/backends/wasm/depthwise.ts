// DepthwiseConv2dNativeBackpropInput and DepthwiseConv2dNativeBackpropFilter for the wasm backend
// (it has neither), as direct loops vectorized over channels (native/kernels.c).
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

type Shape4 = [number, number, number, number];
type Attrs = DepthwiseConv2dNativeBackpropInputAttrs | DepthwiseConv2dNativeBackpropFilterAttrs;

function info(xShape: number[], fShape: number[], attrs: Attrs): backend_util.Conv2DInfo {
  return backend_util.computeConv2DInfo(xShape as Shape4, fShape as Shape4, attrs.strides, attrs.dilations,
    attrs.pad, attrs.dimRoundingMode, true);
}

/** The shape arguments shared by both native kernels, after the three pointers. */
function dims(ci: backend_util.Conv2DInfo): number[] {
  return [ci.batchSize, ci.inHeight, ci.inWidth, ci.inChannels, ci.outChannels / ci.inChannels,
    ci.outHeight, ci.outWidth, ci.filterHeight, ci.filterWidth, ci.strideHeight, ci.strideWidth,
    ci.dilationHeight, ci.dilationWidth, ci.padInfo.top, ci.padInfo.left];
}

function backpropInput(args: Parameters<KernelFunc>[0]): TensorInfo {
  const { inputs, backend, attrs } = args as unknown as KernelArgs<'dy' | 'filter', DepthwiseConv2dNativeBackpropInputAttrs>;
  const { dy, filter } = inputs;
  const ci = info(attrs.inputShape, filter.shape, attrs);
  const nat = Native.of(backend);
  const dx = backend.makeOutput(ci.inShape, 'float32');
  nat.k.dw_grad_input(nat.ptr(dy), nat.ptr(filter), nat.ptr(dx), ...dims(ci));
  return dx;
}

function backpropFilter(args: Parameters<KernelFunc>[0]): TensorInfo {
  const { inputs, backend, attrs } = args as unknown as KernelArgs<'x' | 'dy', DepthwiseConv2dNativeBackpropFilterAttrs>;
  const { x, dy } = inputs;
  const ci = info(x.shape, attrs.filterShape, attrs);
  const nat = Native.of(backend);
  const df = backend.makeOutput(attrs.filterShape, 'float32');
  nat.k.dw_grad_filter(nat.ptr(x), nat.ptr(dy), nat.ptr(df), ...dims(ci));
  return df;
}

export const depthwiseConfigs: KernelConfig[] = [
  { kernelName: DepthwiseConv2dNativeBackpropInput, backendName: 'wasm', kernelFunc: backpropInput },
  { kernelName: DepthwiseConv2dNativeBackpropFilter, backendName: 'wasm', kernelFunc: backpropFilter },
];
