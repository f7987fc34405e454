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
  heapTracker();
  return threadsNote(kernels.wasmKernelThreads());
}

interface HeapFunctions {
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}

/** The most a 32-bit wasm heap can grow to (emscripten's getHeapMax() in tfjs-backend-wasm). */
export const WASM_HEAP_MAX = 4294901760;

/**
 * Bytes allocated on the tfjs heap through its JS-side _malloc/_free (every tensor, and the training kernels'
 * scratch; XNNPACK's allocations inside the module are not seen), with a high-water mark. Installed once per
 * module, when the backend is activated (allocations before that are not counted).
 */
interface HeapTracker {
  live: number;
  peak: number;
}
const trackers = new WeakMap<HeapFunctions, HeapTracker>();
function heapTracker(): HeapTracker {
  const w = (tf.backend() as unknown as { wasm: HeapFunctions }).wasm;
  let t = trackers.get(w);
  if (t) return t;
  // emscripten's first call of _malloc/_free replaces the property with the raw export: make that happen first
  w._free(w._malloc(16));
  const { _malloc: malloc, _free: free } = w;
  const sizes = new Map<number, number>();
  const tracker: HeapTracker = { live: 0, peak: 0 };
  w._malloc = (n) => {
    const p = malloc(n) >>> 0;
    if (p !== 0) {
      sizes.set(p, n);
      tracker.live += n;
      if (tracker.live > tracker.peak) tracker.peak = tracker.live;
    }
    return p;
  };
  w._free = (p) => {
    const n = sizes.get(p >>> 0);
    if (n !== undefined) {
      tracker.live -= n;
      sizes.delete(p >>> 0);
    }
    free(p);
  };
  trackers.set(w, (t = tracker));
  return t;
}

/**
 * The wasm heap as the trainer plans with it: 85% of the 4 GB limit (the rest for fragmentation, XNNPACK's
 * caches and the kernel threads' stacks) less what is allocated now. TRICKS_WASM_HEAP_MB lowers the limit
 * (tests force a small budget with it; the real heap is not changed).
 */
export const wasmMemory: BackendMemory = {
  available() {
    const env = Number(process.env.TRICKS_WASM_HEAP_MB);
    const max = Number.isFinite(env) && env > 0 ? Math.min(env * 2 ** 20, WASM_HEAP_MAX) : WASM_HEAP_MAX;
    return Math.max(0, 0.85 * max - heapTracker().live);
  },
  peakDuring(f) {
    const t = heapTracker();
    const start = t.live;
    t.peak = start;
    f();
    return t.peak - start;
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
