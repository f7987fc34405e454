// h-swish and h-sigmoid (MobileNetV3) as one native pass each way, split across the kernel threads.
// The zoo's HardSwish and HardSigmoid layers (core/models/src/runtime.ts) call these custom kernels
// when the active backend has them, and otherwise compose tfjs ops: x * (relu6(x + 3) / 6) is four
// passes forward and about nine backward (relu6's gradient alone is LessEqual, Step, Cast and two
// Multiplies), 100 ms of LessEqual alone in a MobileNetV3-Small step at 224 px, batch 32.
import { util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { Native, type KernelArgs } from './native.js';
import { flat } from './elementwise.js';

/** The custom kernels: forward {x}, gradient {dy, x}. */
export const HARD_SWISH = 'TricksHardSwish',
  HARD_SWISH_GRAD = 'TricksHardSwishGrad',
  HARD_SIGMOID = 'TricksHardSigmoid',
  HARD_SIGMOID_GRAD = 'TricksHardSigmoidGrad';

/** act_op's op codes (kernels.c). */
const OPS: Record<string, number> = { [HARD_SWISH]: 1, [HARD_SWISH_GRAD]: 2, [HARD_SIGMOID]: 3, [HARD_SIGMOID_GRAD]: 4 };

function actFunc(name: string): KernelFunc {
  const op = OPS[name]!;
  return (args) => {
    const { inputs, backend } = args as unknown as KernelArgs<'x', object>;
    const x = inputs.x,
      dy = inputs.dy;
    const nat = Native.of(backend);
    const out: TensorInfo = backend.makeOutput(x.shape, 'float32');
    const aP = nat.ptr(dy ?? x),
      bP = nat.ptr(x),
      yP = nat.ptr(out);
    flat(nat, util.sizeFromShape(x.shape), 'act_op', (i, count) => [aP + 4 * i, bP + 4 * i, yP + 4 * i, count, op]);
    return out;
  };
}

export const activationConfigs: KernelConfig[] = Object.keys(OPS).map((kernelName) => ({
  kernelName,
  backendName: 'wasm',
  kernelFunc: actFunc(kernelName),
}));
