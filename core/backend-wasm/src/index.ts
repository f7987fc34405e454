export { wasmBackendModule, wasmBuiltin, wasmProvider } from './builtin.js';
export { applyTraining } from './frugal-forward.js';
export { variableGradsFrugal } from './frugal-gradients.js';
export { type BackendMemory, type MemoryPlan, planMicroBatches, WASM_HEAP_MAX, wasmMemory } from './memory-plan.js';
export { registerWasmTrainingKernels, wasmKernelThreads } from './kernels.js';
export { DataParallel, type ModelRef } from './parallel/index.js';
export { threadsPerJob } from './threads.js';
