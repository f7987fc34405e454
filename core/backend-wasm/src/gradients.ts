// Gradients that tfjs-core writes with whole-tensor temporaries the wasm backend pays for dearly:
// FusedBatchNorm's (a Tile to the batch shape, four reductions, a dozen elementwise passes)
// becomes one native pass for the per-channel sums and one for dx; Mean's (ones(x.shape) * dy / n)
// becomes one broadcast. tfjs keys gradients by kernel name only, so these are global: on any
// other backend, or for shapes they do not cover, they run the gradient they replace.
import '@tensorflow/tfjs-layers'; // registers tfjs-core's gradients, which these wrap
import * as tf from '@tensorflow/tfjs-core';
import {
  FusedBatchNorm,
  Mean,
  util,
  type FusedBatchNormAttrs,
  type GradConfig,
  type KernelConfig,
  type KernelFunc,
  type MeanAttrs,
  type NamedAttrMap,
  type Tensor,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { Native, type KernelArgs } from './native.js';
import { BROADCAST_GROUPS, BROADCAST_ROWS, leadingAxes, middleAxes } from './reduce.js';
import { ROWS_BLOCK, Threads } from './threads.js';

/** Custom kernel: [dx, dmean, dvariance, dscale, doffset] of FusedBatchNorm over channels-last x. */
const BATCH_NORM_GRAD = 'TricksBatchNormGrad';

const onWasm = (): boolean => tf.getBackend() === 'wasm';

function batchNormGrad(original: GradConfig): GradConfig {
  return {
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const [x, mean, variance, scale] = saved as [Tensor, Tensor, Tensor, Tensor | undefined];
      const C = x.shape[x.rank - 1];
      const perChannel = (t: Tensor | undefined) => t == null || (t.rank === 1 && t.shape[0] === C);
      if (
        !onWasm() ||
        x.dtype !== 'float32' ||
        mean.rank !== 1 ||
        !perChannel(variance) ||
        !perChannel(mean) ||
        !perChannel(scale) ||
        Array.isArray(dy)
      ) {
        return original.gradFunc(dy, saved, attrs);
      }
      // One kernel computes all five; run now, not inside the tidy that tfjs wraps around each
      // input's gradient thunk (which would dispose the four outputs that thunk does not return).
      const [dx, dmean, dvariance, dscale, doffset] = tf
        .engine()
        .runKernel(
          BATCH_NORM_GRAD,
          scale == null ? { x, dy, mean, variance } : { x, dy, mean, variance, scale },
          attrs as unknown as NamedAttrMap,
        ) as Tensor[];
      return {
        x: () => dx!,
        mean: () => dmean!,
        variance: () => dvariance!,
        scale: () => dscale!,
        offset: () => doffset!,
      };
    },
  };
}

/**
 * Per-channel sum(dy) and sum(dy * (x - mean)) of channels-last rows (heap addresses) into sdy and sdyx, the
 * rows split across the kernel threads and the block sums added in block order (thread-count independent).
 */
export function bnGradSums(nat: Native, xP: number, dyP: number, meanP: number, rows: number, C: number, sdy: number, sdyx: number): void {
  const blocks = Math.ceil(rows / ROWS_BLOCK);
  nat.withScratch([blocks * C, blocks * C], (pdy, pdyx) => {
    Threads.of(nat).byBlocks(rows, (r0, r1, b0) => [
      'bn_grad_blocks',
      [xP + 4 * r0 * C, dyP + 4 * r0 * C, meanP, pdy + 4 * b0 * C, pdyx + 4 * b0 * C, r1 - r0, C],
    ]);
    nat.k.sum_blocks(pdy, sdy, blocks, C, 1);
    nat.k.sum_blocks(pdyx, sdyx, blocks, C, 1);
  });
}

function batchNormGradKernel(args: Parameters<KernelFunc>[0]): TensorInfo[] {
  const { inputs, backend, attrs } = args as unknown as KernelArgs<'x' | 'dy' | 'mean' | 'variance', FusedBatchNormAttrs>;
  const { x, dy, mean, variance, scale } = inputs;
  const C = x.shape[x.shape.length - 1]!;
  const rows = util.sizeFromShape(x.shape) / C;
  const nat = Native.of(backend);
  const out = [x.shape, [C], [C], [C], [C]].map((s) => backend.makeOutput(s, 'float32'));
  const [dx, dmean, dvar, dscale, doffset] = out as [TensorInfo, TensorInfo, TensorInfo, TensorInfo, TensorInfo];
  const th = Threads.of(nat);
  const xP = nat.ptr(x),
    dyP = nat.ptr(dy),
    meanP = nat.ptr(mean),
    dxP = nat.ptr(dx);
  nat.withScratch([C, C], (sdy, sdyx) => {
    bnGradSums(nat, xP, dyP, meanP, rows, C, sdy, sdyx);
    const heap = nat.heap();
    const f32 = (t: TensorInfo | number) => new Float32Array(heap, typeof t === 'number' ? t : nat.ptr(t), C);
    const [Sdy, Sdyx, V, G] = [f32(sdy), f32(sdyx), f32(variance), scale ? f32(scale) : undefined];
    const [Dm, Dv, Ds, Do] = [f32(dmean), f32(dvar), f32(dscale), f32(doffset)];
    const coef = f32(sdy); // reuses sdy once read: dx = dy * scale * rstd
    for (let c = 0; c < C; c++) {
      const rstd = 1 / Math.sqrt(V[c]! + attrs.varianceEpsilon),
        g = G ? G[c]! : 1;
      const sdyc = Sdy[c]!,
        sdyxc = Sdyx[c]!;
      Dm[c] = -rstd * g * sdyc;
      Dv[c] = -0.5 * g * rstd * rstd * rstd * sdyxc;
      Ds[c] = rstd * sdyxc;
      Do[c] = sdyc;
      coef[c] = g * rstd;
    }
    th.byRows(rows, (r0, r1) => ['scale_channels', [dyP + 4 * r0 * C, sdy, dxP + 4 * r0 * C, r1 - r0, C]]);
  });
  return out;
}

function meanGrad(original: GradConfig): GradConfig {
  return {
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved as [Tensor];
      const axis = (attrs as unknown as MeanAttrs).axis;
      const k = onWasm() && !Array.isArray(dy) && x.dtype === 'float32' ? leadingAxes(x.shape, axis) : -1;
      const mid = onWasm() && !Array.isArray(dy) && x.dtype === 'float32' && k < 0 ? middleAxes(x.shape, axis) : undefined;
      if (mid) {
        // the global average pool's gradient: dy [G, C] spread over each group's R rows
        const [G, R, C] = mid;
        return {
          x: () => tf.engine().runKernel(BROADCAST_GROUPS, { x: dy as Tensor }, { shape: x.shape, G, R, C, scale: 1 / R }) as Tensor,
        };
      }
      if (k < 0) return original.gradFunc(dy, saved, attrs);
      const n = util.sizeFromShape(x.shape.slice(0, k));
      return { x: () => tf.engine().runKernel(BROADCAST_ROWS, { x: dy as Tensor }, { shape: x.shape, scale: 1 / n }) as Tensor };
    },
  };
}

export const gradientKernelConfigs: KernelConfig[] = [
  { kernelName: BATCH_NORM_GRAD, backendName: 'wasm', kernelFunc: batchNormGradKernel as unknown as KernelFunc },
];

/** The replacement gradients, each wrapping the one registered now. */
export function gradientConfigs(): GradConfig[] {
  const configs: GradConfig[] = [];
  const bn = tf.getGradient(FusedBatchNorm),
    mean = tf.getGradient(Mean);
  if (bn) configs.push(batchNormGrad(bn));
  if (mean) configs.push(meanGrad(mean));
  return configs;
}
