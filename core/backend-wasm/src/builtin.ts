import { ContainerModule } from 'inversify';
import * as tf from '@tensorflow/tfjs-core';
import { definePlugin, TOKENS, type BackendMemory, type BackendProvider, type BackendService } from '@tricks/core';

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

interface HeapFunctions {
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}
const heapFunctions = () => (tf.backend() as unknown as { wasm: HeapFunctions }).wasm;

/** The most a 32-bit wasm heap can grow to (emscripten's getHeapMax() in tfjs-backend-wasm). */
export const WASM_HEAP_MAX = 4294901760;

/**
 * The wasm heap as the trainer plans with it. What is allocated now is read from tfjs's tensor bytes (the
 * weights before training), counted three times over for the optimizer's state (Adam keeps two copies);
 * 15% of the heap is left for fragmentation, XNNPACK's caches and the kernel threads' stacks.
 * TRICKS_WASM_HEAP_MB lowers the limit (tests force a small budget with it).
 */
export const wasmMemory: BackendMemory = {
  available() {
    const env = Number(process.env.TRICKS_WASM_HEAP_MB);
    const max = Number.isFinite(env) && env > 0 ? Math.min(env * 2 ** 20, WASM_HEAP_MAX) : WASM_HEAP_MAX;
    return Math.max(0, 0.85 * max - 3 * tf.memory().numBytes);
  },
  peakDuring(f) {
    const w = heapFunctions();
    // emscripten's first call of _malloc/_free replaces the property with the raw export: make that happen
    // now, or it would replace these wrappers mid-measurement
    w._free(w._malloc(16));
    const { _malloc: malloc, _free: free } = w;
    const sizes = new Map<number, number>();
    let live = 0,
      peak = 0;
    w._malloc = (n) => {
      const p = malloc(n) >>> 0;
      sizes.set(p, n);
      live += n;
      if (live > peak) peak = live;
      return p;
    };
    w._free = (p) => {
      const n = sizes.get(p >>> 0);
      if (n !== undefined) {
        live -= n;
        sizes.delete(p >>> 0);
      }
      free(p);
    };
    try {
      f();
    } finally {
      w._malloc = malloc;
      w._free = free;
    }
    return peak;
  },
};

/** The wasm backend as core's backend service sees it. */
export const wasmProvider: BackendProvider = {
  activate,
  autoReason: 'wasm with the tricks training kernels is the fastest here',
  memory: wasmMemory,
};

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
