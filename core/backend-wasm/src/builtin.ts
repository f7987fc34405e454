import { ContainerModule } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import { definePlugin, TOKENS, type BackendProvider, type BackendService } from '@tricks/core';

const threadsNote = (n: number) => `kernels on ${n} thread${n === 1 ? '' : 's'}; TRICKS_WASM_THREADS sets it`;

/** Makes wasm with the training kernels the active backend; returns the log note (its kernel threads). */
async function activate(): Promise<string> {
  await import('@tensorflow/tfjs-backend-wasm');
  const kernels = await import('./kernels.js');
  kernels.registerWasmTrainingKernels();
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialize');
  await tf.ready();
  return threadsNote(kernels.wasmKernelThreads());
}

/** The wasm backend as core's backend service sees it. */
export const wasmProvider: BackendProvider = { activate, autoReason: 'wasm with the tricks training kernels is the fastest here' };

/** Registers wasm with the container's BackendService when it is first resolved. */
export const wasmBackendModule = () =>
  new ContainerModule(({ onActivation }) => {
    onActivation<BackendService>(TOKENS.Backend, (_ctx, service) => {
      service.register?.('wasm', wasmProvider);
      return service;
    });
  });

/** The built-in plugin that makes `--backend wasm` (and auto's wasm) available to a trainer. */
export const wasmBuiltin = definePlugin({
  name: 'tricks:backend-wasm',
  description: 'the wasm backend with the tricks training kernels',
  apply() {},
  modules: () => [wasmBackendModule()],
});
