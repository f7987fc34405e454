// Training kernels for @tensorflow/tfjs-backend-wasm: the gradients it lacks (Conv2DBackpropFilter,
// depthwise backprops, UnsortedSegmentSum) and faster versions of what dominates convnet training
// on it (Winograd 3x3 convolutions, im2col and GEMM-per-tap conv gradients, batch-norm gradients,
// one-pass optimizer steps, leading-axes reductions, copy-free Identity/Cast). See docs/backends.md.
import '@tensorflow/tfjs-backend-wasm';
import {
  backend as currentBackend,
  getKernel,
  registerGradient,
  registerKernel,
  unregisterKernel,
  type KernelConfig,
} from '@tensorflow/tfjs-core';
import { activationConfigs } from './activations.js';
import { batchNormConfigs } from './batchnorm.js';
import { batchNormTrainingKernels, patchBatchNormTraining } from './batchnorm-training.js';
import { conv2dConfigs } from './conv2d.js';
import { depthwiseConfigs } from './depthwise.js';
import { elementwiseConfigs, elementwiseGradients } from './elementwise.js';
import { matMulConfigs } from './matmul.js';
import { optimizerConfigs } from './optimizer.js';
import { poolingConfigs } from './pooling.js';
import { gradientConfigs, gradientKernelConfigs } from './gradients.js';
import { reduceConfigs } from './reduce.js';
import { segmentConfigs } from './segment.js';
import { Native, type WasmBackend } from './native.js';
import { shareTfjsWasmMemory } from './shared-memory.js';
import { Threads } from './threads.js';

export { winogradApplies } from './conv2d.js';

let registered = false;

/**
 * Registers (once; later calls do nothing) the wasm training kernels. Stock kernels that are
 * replaced stay reachable: the replacements fall back to them for shapes they do not cover.
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  // Before the backend initializes: its heap becomes a shared memory, so the kernels can use every core.
  shareTfjsWasmMemory();
  const stock = (name: string): KernelConfig | undefined => getKernel(name, 'wasm');
  const kernels = [
    ...conv2dConfigs(stock),
    ...batchNormConfigs(stock),
    ...elementwiseConfigs(stock),
    ...matMulConfigs(stock),
    ...depthwiseConfigs(stock),
    ...poolingConfigs,
    ...activationConfigs,
    ...segmentConfigs,
    ...reduceConfigs(stock),
    ...gradientKernelConfigs,
    ...batchNormTrainingKernels,
    ...optimizerConfigs,
  ];
  for (const config of kernels) {
    if (getKernel(config.kernelName, 'wasm')) unregisterKernel(config.kernelName, 'wasm');
    registerKernel(config);
  }
  for (const config of [...gradientConfigs(), ...elementwiseGradients()]) registerGradient(config);
  patchBatchNormTraining();
}

/**
 * The threads the kernels of the active wasm backend run on (starts them): TRICKS_WASM_THREADS or
 * the machine's cores, or 1 if the backend initialized before registerWasmTrainingKernels (its heap
 * is then private).
 */
export function wasmKernelThreads(): number {
  return Threads.of(Native.of(currentBackend() as unknown as WasmBackend)).count;
}
