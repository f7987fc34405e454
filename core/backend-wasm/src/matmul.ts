// BatchMatMul on our SGEMM: transposed operands cost nothing (the GEMM reads A and B through
// strides), where the stock kernel with transposeA ran ~12x slower than without, and every dense
// layer's weight gradient (x^T dy) asks for exactly that. Split across the kernel threads. Batch
// dimensions that broadcast, and small products, stay on the stock kernel.
import { BatchMatMul, util, type BatchMatMulAttrs, type KernelConfig, type KernelFunc } from '@tensorflow/tfjs-core';
import { Native, type KernelArgs } from './native.js';
import { Threads } from './threads.js';

/** Below this many multiply-adds the stock kernel is as fast. */
const MIN_MACS = 1 << 18;

function batchMatMulFunc(stock: KernelFunc): KernelFunc {
  return (args) => {
    const {
      inputs: { a, b },
      backend,
      attrs,
    } = args as unknown as KernelArgs<'a' | 'b', BatchMatMulAttrs>;
    const ra = a.shape.length,
      rb = b.shape.length;
    if (
      a.dtype !== 'float32' ||
      b.dtype !== 'float32' ||
      ra < 2 ||
      ra !== rb ||
      !util.arraysEqual(a.shape.slice(0, -2), b.shape.slice(0, -2))
    ) {
      return stock(args);
    }
    const { transposeA, transposeB } = attrs;
    const [a0, a1] = a.shape.slice(-2) as [number, number];
    const [b0, b1] = b.shape.slice(-2) as [number, number];
    const [M, K] = transposeA ? [a1, a0] : [a0, a1];
    const [K2, N] = transposeB ? [b1, b0] : [b0, b1];
    const P = util.sizeFromShape(a.shape.slice(0, -2));
    if (K !== K2 || P * M * N * K < MIN_MACS || M === 0 || N === 0 || K === 0) return stock(args);
    const nat = Native.of(backend),
      th = Threads.of(nat);
    const out = backend.makeOutput([...a.shape.slice(0, -2), M, N], 'float32');
    const gs = Native.gemmScratch(N);
    nat.withScratch([gs * th.count], (S) =>
      th.sgemm(
        P,
        M,
        N,
        K,
        nat.ptr(a),
        transposeA ? 1 : K,
        transposeA ? M : 1,
        M * K,
        nat.ptr(b),
        transposeB ? 1 : N,
        transposeB ? K : 1,
        K * N,
        nat.ptr(out),
        N,
        M * N,
        0,
        S,
        gs,
      ),
    );
    return out;
  };
}

export function matMulConfigs(stock: (name: string) => KernelConfig | undefined): KernelConfig[] {
  const s = stock(BatchMatMul);
  return s ? [{ ...s, kernelFunc: batchMatMulFunc(s.kernelFunc) }] : [];
}
