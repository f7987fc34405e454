export { WASM_HEAP_MAX, wasmBackendModule, wasmBuiltin, wasmMemory, wasmProvider } from './builtin.js';
export { registerWasmTrainingKernels, wasmKernelThreads } from './kernels.js';
export { DataParallel, type ModelRef } from './parallel/index.js';
export { threadsPerJob } from './threads.js';
