import { ContainerModule } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import { definePlugin, TOKENS, type BackendProvider, type BackendService, type GradientFunction, type TrainingForward } from '@tricks/core';
import { applyTraining } from './frugal-forward.js';
import { variableGradsFrugal } from './frugal-gradients.js';
import { heapTracker, planMicroBatches, wasmMemory } from './memory-plan.js';

const threadsNote = (n: number) => `kernels on ${n} thread${n === 1 ? '' : 's'}; TRICKS_WASM_THREADS sets it`;

/** Makes wasm with the training kernels the active backend; returns the log note (its kernel threads). */
async function activate(): Promise<string> {
  await import('@tensorflow/tfjs-backend-wasm');
  const kernels = await import('./kernels.js');
  kernels.registerWasmTrainingKernels();
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialize');
  await tf.ready();
  heapTracker();
  return threadsNote(kernels.wasmKernelThreads());
}

/** The wasm backend as core's backend service sees it. */
export const wasmProvider: BackendProvider = {
  activate,
  autoReason: 'wasm with the tricks training kernels is the fastest here',
};

/**
 * Registers wasm with the container's BackendService when it is first resolved, and replaces the gradient and
 * training-forward services with the frugal ones (same results, a fraction of the memory: docs/backends.md).
 */
export const wasmBackendModule = () =>
  new ContainerModule(({ onActivation, rebind }) => {
    onActivation<BackendService>(TOKENS.Backend, (_ctx, service) => {
      service.register?.('wasm', wasmProvider);
      return service;
    });
    rebind<GradientFunction>(TOKENS.Gradients).toConstantValue(variableGradsFrugal);
    rebind<TrainingForward>(TOKENS.Forward).toConstantValue(applyTraining);
  });

/** The built-in plugin that makes `--backend wasm` (and auto's wasm) available to a trainer. */
export const wasmBuiltin = definePlugin({
  name: 'tricks:backend-wasm',
  description: 'the wasm backend with the tricks training kernels, and the memory plan for its 4 GB heap',
  apply(api) {
    // last in setup (a plugin's teacher is loaded by then): micro-batches and the validation batch that fit
    api.hooks.setup.tapPromise({ name: 'tricks:backend-wasm', stage: 1000 }, async (ctx) => {
      if (ctx.backend !== 'wasm') return;
      const plan = planMicroBatches({
        model: ctx.model,
        modelName: ctx.config.model.name,
        inputShape: ctx.inputShape,
        numClasses: ctx.numClasses,
        batchSize: ctx.config.batchSize,
        evalBatchSize: ctx.evalBatchSize,
        gradAccum: ctx.config.gradAccum,
        memory: wasmMemory,
        logger: ctx.logger,
      });
      ctx.microBatches = plan.microBatches;
      ctx.evalBatchSize = plan.evalBatchSize;
    });
  },
  modules: () => [wasmBackendModule()],
});
