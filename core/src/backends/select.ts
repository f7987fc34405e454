import * as tf from '@tensorflow/tfjs-core';
import { TricksError } from '../hooks/errors.js';
import type { Logger } from '../io/logger.js';

export type BackendName = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

const NATIVE: Record<'tensorflow-gpu' | 'tensorflow', { pkg: string; backend: string }> = {
  'tensorflow-gpu': { pkg: '@tensorflow/tfjs-node-gpu', backend: 'tensorflow' },
  tensorflow: { pkg: '@tensorflow/tfjs-node', backend: 'tensorflow' },
};

/** Selects and prepares the tfjs backend. A service: rebind it to add a backend. */
export interface BackendService {
  /** Makes `name` the active backend (auto: the fastest available) and returns what it took. */
  select(name: string): Promise<string>;
}

async function tryImport(pkg: string): Promise<boolean> {
  try {
    await import(pkg);
    return true;
  } catch {
    return false;
  }
}

/** Makes wasm (with the training kernels) the backend; returns the threads its kernels use. */
async function useWasm(): Promise<number> {
  await import('@tensorflow/tfjs-backend-wasm');
  const kernels = await import('./wasm/index.js');
  kernels.registerWasmTrainingKernels();
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialize');
  await tf.ready();
  return kernels.wasmKernelThreads();
}

const threadsNote = (n: number) => `kernels on ${n} thread${n === 1 ? '' : 's'}; TRICKS_WASM_THREADS sets it`;

async function useCpu(): Promise<void> {
  await import('@tensorflow/tfjs-backend-cpu');
  await tf.setBackend('cpu');
  await tf.ready();
}

/**
 * auto: @tensorflow/tfjs-node-gpu, then @tensorflow/tfjs-node (both optional: their install downloads
 * libtensorflow), then wasm with our training kernels (about 30x the cpu backend here), then cpu.
 */
export class DefaultBackendService implements BackendService {
  constructor(private readonly logger: Logger) {}

  async select(name: string): Promise<string> {
    switch (name) {
      case 'tensorflow-gpu':
      case 'tensorflow': {
        const { pkg, backend } = NATIVE[name];
        if (!(await tryImport(pkg))) {
          throw new TricksError(`--backend ${name}: ${pkg} is not installed`, `install it with \`npm install ${pkg}\` (it downloads libtensorflow, so it needs internet), or use --backend wasm`);
        }
        await tf.setBackend(backend);
        await tf.ready();
        return name;
      }
      case 'wasm':
        this.logger.info(`backend: wasm (${threadsNote(await useWasm())})`);
        return 'wasm';
      case 'cpu':
        await useCpu();
        return 'cpu';
      case 'auto': {
        for (const native of ['tensorflow-gpu', 'tensorflow'] as const) {
          if (await tryImport(NATIVE[native].pkg)) {
            await tf.setBackend('tensorflow');
            await tf.ready();
            this.logger.info(`backend: ${native} (auto: ${NATIVE[native].pkg} is installed)`);
            return native;
          }
        }
        try {
          const threads = await useWasm();
          this.logger.info(`backend: wasm (auto: @tensorflow/tfjs-node is not installed; wasm with the tricks training kernels is the fastest here; ${threadsNote(threads)})`);
          return 'wasm';
        } catch (e) {
          this.logger.warn(`wasm backend unavailable (${(e as Error).message}); falling back to cpu`);
        }
        await useCpu();
        this.logger.info('backend: cpu (auto: neither tfjs-node nor wasm is available)');
        return 'cpu';
      }
      default:
        throw new TricksError(`unknown backend "${name}" (option --backend)`, 'choose one of auto, tensorflow-gpu, tensorflow, wasm, cpu');
    }
  }
}
