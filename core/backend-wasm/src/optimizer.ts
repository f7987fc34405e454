// One pass of native code per variable for the SGD and Adam/AdamW steps (core/trainer/src/optim/optimizer.ts):
// unfused, they are six (SGD) to fourteen (Adam) elementwise kernels over every weight, each reading
// and writing the whole tensor. Same f32 operations in the same order, so the results are bit-identical.
import { util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { ADAM_STEP_KERNEL, SGD_STEP_KERNEL, type AdamStepAttrs, type SgdStepAttrs } from '@tricks/core';
import { flat } from './elementwise.js';
import { Native, type KernelArgs } from './native.js';

function sgdStep(args: Parameters<KernelFunc>[0]): TensorInfo[] {
  const {
    inputs: { value, grad, buf },
    backend,
    attrs,
  } = args as unknown as KernelArgs<'value' | 'grad' | 'buf', SgdStepAttrs>;
  const nat = Native.of(backend);
  const m = attrs.momentum;
  const w = backend.makeOutput(value.shape, 'float32');
  const b = m ? backend.makeOutput(value.shape, 'float32') : undefined;
  const wP = nat.ptr(value),
    gP = nat.ptr(grad),
    bP = m ? nat.ptr(buf) : 0,
    woP = nat.ptr(w),
    boP = b ? nat.ptr(b) : 0;
  flat(nat, util.sizeFromShape(value.shape), 'sgd_step', (i, count) => [
    wP + 4 * i,
    gP + 4 * i,
    bP && bP + 4 * i,
    woP + 4 * i,
    boP && boP + 4 * i,
    count,
    attrs.lr,
    m,
    attrs.weightDecay,
    attrs.nesterov ? 1 : 0,
  ]);
  return b ? [w, b] : [w];
}

function adamStep(args: Parameters<KernelFunc>[0]): TensorInfo[] {
  const {
    inputs: { value, grad, m, v },
    backend,
    attrs: a,
  } = args as unknown as KernelArgs<'value' | 'grad' | 'm' | 'v', AdamStepAttrs>;
  const nat = Native.of(backend);
  const outs = [0, 1, 2].map(() => backend.makeOutput(value.shape, 'float32'));
  const [wP, gP, mP, vP] = [value, grad, m, v].map((t) => nat.ptr(t));
  const [woP, moP, voP] = outs.map((t) => nat.ptr(t));
  flat(nat, util.sizeFromShape(value.shape), 'adam_step', (i, count) => [
    wP! + 4 * i,
    gP! + 4 * i,
    mP! + 4 * i,
    vP! + 4 * i,
    woP! + 4 * i,
    moP! + 4 * i,
    voP! + 4 * i,
    count,
    a.l2,
    a.beta1,
    1 - a.beta1,
    a.beta2,
    1 - a.beta2,
    a.sqrtBc2,
    a.eps,
    a.decoupled ? 1 : 0,
    a.wMul,
    a.step,
  ]);
  return outs;
}

export const optimizerConfigs: KernelConfig[] = [
  { kernelName: SGD_STEP_KERNEL, backendName: 'wasm', kernelFunc: sgdStep as unknown as KernelFunc },
  { kernelName: ADAM_STEP_KERNEL, backendName: 'wasm', kernelFunc: adamStep as unknown as KernelFunc },
];
