// FusedBatchNorm (the forward of every batch-norm layer, in training and inference) as one native
// pass, split across the kernel threads: y = (x - mean) * scale / sqrt(variance + eps) + offset over
// the channels of channels-last x. The stock kernel was ~8 ms per ResNet-18 layer on one thread.
// Other shapes (statistics not per channel) fall back to the stock kernel.
import { FusedBatchNorm, util, type FusedBatchNormAttrs, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { Native, type KernelArgs } from './native.js';
import { Threads } from './threads.js';

function batchNormFunc(stock: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args as unknown as KernelArgs<'x' | 'mean' | 'variance', FusedBatchNormAttrs>;
    const { x, mean, variance, offset, scale } = inputs;
    const C = x.shape[x.shape.length - 1] ?? 0;
    const perChannel = (t: TensorInfo | undefined) =>
      t == null || (t.dtype === 'float32' && util.sizeFromShape(t.shape) === C && t.shape[t.shape.length - 1] === C);
    if (
      x.dtype !== 'float32' ||
      x.shape.length < 2 ||
      C === 0 ||
      mean == null ||
      variance == null ||
      ![mean, variance, offset, scale].every(perChannel)
    ) {
      return stock(args);
    }
    const rows = util.sizeFromShape(x.shape) / C;
    const nat = Native.of(backend);
    const out = backend.makeOutput(x.shape, 'float32');
    const xP = nat.ptr(x),
      yP = nat.ptr(out),
      meanP = nat.ptr(mean),
      offP = offset ? nat.ptr(offset) : 0;
    nat.withScratch([C], (a) => {
      const heap = nat.heap();
      const A = new Float32Array(heap, a, C),
        V = new Float32Array(heap, nat.ptr(variance), C);
      const G = scale ? new Float32Array(heap, nat.ptr(scale), C) : undefined;
      for (let c = 0; c < C; c++) A[c] = (G ? G[c]! : 1) / Math.sqrt(V[c]! + attrs.varianceEpsilon);
      Threads.of(nat).byRows(rows, (r0, r1) => ['bn_apply', [xP + 4 * r0 * C, meanP, a, offP, yP + 4 * r0 * C, r1 - r0, C]]);
    });
    return out;
  };
}

export function batchNormConfigs(stock: (name: string) => KernelConfig | undefined): KernelConfig[] {
  const s = stock(FusedBatchNorm);
  return s ? [{ ...s, kernelFunc: batchNormFunc(s.kernelFunc) }] : [];
}
