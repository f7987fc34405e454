// MaxPoolGrad for the wasm backend: the stock kernel took 315-380 ms for ResNet's 112x112x64 stem
// pool at batch 16 (docs/backends.md, 224-px profile); one native pass over the windows, vectorized
// over channels and split across the kernel threads by images, takes a few.
import {
  backend_util,
  MaxPoolGrad,
  type KernelConfig,
  type KernelFunc,
  type MaxPoolGradAttrs,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { Native, type KernelArgs } from './native.js';
import { Threads } from './threads.js';

function maxPoolGrad(args: Parameters<KernelFunc>[0]): TensorInfo {
  const { inputs, backend, attrs } = args as unknown as KernelArgs<'dy' | 'input' | 'output', MaxPoolGradAttrs>;
  const { dy, input, output } = inputs;
  const ci = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const nat = Native.of(backend),
    th = Threads.of(nat);
  const dx = backend.makeOutput(input.shape, 'float32');
  const [dyP, xP, yP, dxP] = [nat.ptr(dy), nat.ptr(input), nat.ptr(output), nat.ptr(dx)];
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = ci;
  th.run(
    th
      .ranges(ci.batchSize)
      .map(([a, b]) => [
        'max_pool_grad',
        [
          dyP + 4 * a * OH * OW * C,
          xP + 4 * a * H * W * C,
          yP + 4 * a * OH * OW * C,
          dxP + 4 * a * H * W * C,
          b - a,
          H,
          W,
          C,
          OH,
          OW,
          ci.filterHeight,
          ci.filterWidth,
          ci.strideHeight,
          ci.strideWidth,
          ci.dilationHeight,
          ci.dilationWidth,
          ci.padInfo.top,
          ci.padInfo.left,
        ],
      ]),
  );
  return dx;
}

export const poolingConfigs: KernelConfig[] = [{ kernelName: MaxPoolGrad, backendName: 'wasm', kernelFunc: maxPoolGrad }];
