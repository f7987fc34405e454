// Batch norm in training as one differentiable op. tfjs-layers normalizes with tf.moments, whose
// decomposition (mean, x - mean, its square, their mean) leaves two whole-size tensors on the gradient
// tape per layer on top of the layer's input: on ResNet-18 at 224 px that was ~40 MB of the ~127 MB a
// training step held per image. Here the forward is the same ops in the same order (bit-identical
// outputs and moving statistics), run inside a tf.customGrad that keeps only x, and the backward is the
// closed form of batch norm's gradient with the batch statistics (two native passes, as TricksBatchNormGrad):
//   dx = g*rstd * (dy - sum(dy)/N - (x - mean) * rstd^2 * sum(dy * (x - mean))/N),
//   dgamma = rstd * sum(dy * (x - mean)),  dbeta = sum(dy).
// Only BatchNormalization layers with both gamma and beta over the last axis, on float32 input, on the
// wasm backend take this path; every other case runs tfjs-layers' own call. TRICKS_WASM_MEMORY_SAVING=0 turns it off
// (with Relu's output-saved gradient; core/bench's memory benchmark measures both).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { util, type KernelConfig, type KernelFunc, type NamedAttrMap, type Tensor, type TensorInfo } from '@tensorflow/tfjs-core';
import { Native, type KernelArgs } from './native.js';
import { bnGradSums } from './gradients.js';
import { Threads } from './threads.js';

/** Custom kernel: [dx, dscale, doffset] of batch norm with batch statistics, channels-last x. */
export const BATCH_NORM_TRAIN_GRAD = 'TricksBatchNormTrainGrad';

function trainGradKernel(args: Parameters<KernelFunc>[0]): TensorInfo[] {
  const { inputs, backend, attrs } = args as unknown as KernelArgs<'x' | 'dy' | 'mean' | 'variance' | 'scale', { varianceEpsilon: number }>;
  const { x, dy, mean, variance, scale } = inputs;
  const C = x.shape[x.shape.length - 1]!;
  const rows = util.sizeFromShape(x.shape) / C;
  const nat = Native.of(backend);
  const out = [x.shape, [C], [C]].map((s) => backend.makeOutput(s, 'float32'));
  const [dx, dscale, doffset] = out as [TensorInfo, TensorInfo, TensorInfo];
  const th = Threads.of(nat);
  const xP = nat.ptr(x),
    dyP = nat.ptr(dy),
    meanP = nat.ptr(mean),
    dxP = nat.ptr(dx);
  nat.withScratch([C, C, C, C, C], (sdy, sdyx, a, b, d) => {
    bnGradSums(nat, xP, dyP, meanP, rows, C, sdy, sdyx);
    const heap = nat.heap();
    const f32 = (t: TensorInfo | number) => new Float32Array(heap, typeof t === 'number' ? t : nat.ptr(t), C);
    const [Sdy, Sdyx, V, G, A, B, D, Ds, Do] = [sdy, sdyx, variance, scale, a, b, d, dscale, doffset].map(f32) as Float32Array[];
    for (let c = 0; c < C; c++) {
      const rstd = 1 / Math.sqrt(V![c]! + attrs.varianceEpsilon),
        g = G![c]!;
      A![c] = g * rstd;
      B![c] = (-g * rstd * rstd * rstd * Sdyx![c]!) / rows;
      D![c] = (-g * rstd * Sdy![c]!) / rows;
      Ds![c] = rstd * Sdyx![c]!;
      Do![c] = Sdy![c]!;
    }
    th.byRows(rows, (r0, r1) => ['bn_train_dx', [dyP + 4 * r0 * C, xP + 4 * r0 * C, meanP, a, b, d, dxP + 4 * r0 * C, r1 - r0, C]]);
  });
  return out;
}

export const batchNormTrainingKernels: KernelConfig[] = [
  { kernelName: BATCH_NORM_TRAIN_GRAD, backendName: 'wasm', kernelFunc: trainGradKernel as unknown as KernelFunc },
];

interface BatchNormLayer {
  axis: number;
  momentum: number;
  epsilon: number;
  gamma?: tfl.LayerVariable | null;
  beta?: tfl.LayerVariable | null;
  movingMean: tfl.LayerVariable;
  movingVariance: tfl.LayerVariable;
}
type Call = (this: BatchNormLayer, inputs: Tensor | Tensor[], kwargs: Record<string, unknown>) => Tensor;

let patched = false;

/**
 * Makes tfjs-layers' BatchNormalization use the one-op training path on the wasm backend (once). The layer
 * class, its config and its weights are untouched: saved models stay stock tfjs-layers models.
 */
export function patchBatchNormTraining(): void {
  if (patched) return;
  patched = true;
  const proto = Object.getPrototypeOf(tfl.layers.batchNormalization({})) as { call: Call };
  const original = proto.call;
  proto.call = function (this: BatchNormLayer, inputs, kwargs) {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const axis = x ? (this.axis >= 0 ? this.axis : this.axis + x.rank) : -1;
    if (
      !kwargs?.['training'] ||
      tf.getBackend() !== 'wasm' ||
      process.env.TRICKS_WASM_MEMORY_SAVING === '0' ||
      !x ||
      (Array.isArray(inputs) && inputs.length !== 1) ||
      x.dtype !== 'float32' ||
      x.rank < 2 ||
      axis !== x.rank - 1 ||
      !this.gamma ||
      !this.beta
    ) {
      return original.call(this, inputs, kwargs);
    }
    const eps = this.epsilon;
    const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
    return tf.tidy(() => {
      let mean!: Tensor, variance!: Tensor;
      const op = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
        const [xs, gamma, beta, save] = args as [Tensor, Tensor, Tensor, tf.GradSaveFunc];
        // inside a custom op nothing is taped: the statistics' temporaries are freed here, not kept for backprop
        [mean, variance] = tf.tidy(() => {
          const m = tf.moments(xs, axes);
          return [m.mean, m.variance];
        });
        // kept: the engine tidies a custom op's forward, and the moving averages below read them after it
        tf.keep(mean);
        tf.keep(variance);
        save([xs, mean, variance, gamma]);
        return {
          value: tf.batchNorm(xs, mean, variance, beta, gamma, eps),
          gradFunc: (dy: Tensor, saved: Tensor[]) => {
            const [sx, sm, sv, sg] = saved as [Tensor, Tensor, Tensor, Tensor];
            return tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD, { x: sx, dy, mean: sm, variance: sv, scale: sg }, {
              varianceEpsilon: eps,
            } as unknown as NamedAttrMap) as Tensor[];
          },
        };
      });
      const y = op(x, this.gamma!.read() as Tensor, this.beta!.read() as Tensor);
      // the moving averages exactly as tfjs-layers updates them
      for (const [v, value] of [
        [this.movingMean, mean],
        [this.movingVariance, variance],
      ] as const) {
        tf.tidy(() => {
          const orig = v.read();
          v.write(tf.sub(orig, tf.mul(tf.sub(orig, value), 1 - this.momentum)));
        });
      }
      tf.dispose([mean, variance]);
      return y;
    });
  };
}
