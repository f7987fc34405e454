import * as tf from '@tensorflow/tfjs-core';
import { TricksError } from '../hooks/errors.js';
import type { Logger } from '../io/logger.js';

export type BackendName = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

const NATIVE: Record<'tensorflow-gpu' | 'tensorflow', { pkg: string; backend: string }> = {
  'tensorflow-gpu': { pkg: '@tensorflow/tfjs-node-gpu', backend: 'tensorflow' },
  tensorflow: { pkg: '@tensorflow/tfjs-node', backend: 'tensorflow' },
};

/** Selects and prepares the tfjs backend. A service: rebind it, or `register` a provider, to add a backend. */
export interface BackendService {
  /** Makes `name` the active backend (auto: the fastest available) and returns what it took. */
  select(name: string): Promise<string>;
  /** Adds a backend that `select(name)` and auto (after the native ones, before cpu) can take. */
  register?(name: string, provider: BackendProvider): void;
}

/** A backend another package brings (@tricks/backend-wasm: wasm with the training kernels). */
export interface BackendProvider {
  /** Makes it the active tfjs backend; returns a note for the log (e.g. its kernel threads). Throws when it cannot. */
  activate(): Promise<string>;
  /** Why auto prefers it over cpu, for the log line. */
  autoReason?: string;
}

async function tryImport(pkg: string): Promise<boolean> {
  try {
    await import(pkg);
    return true;
  } catch {
    return false;
  }
}

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
  private readonly providers = new Map<string, BackendProvider>();
  constructor(private readonly logger: Logger) {}

  register(name: string, provider: BackendProvider): void {
    this.providers.set(name, provider);
  }

  async select(name: string): Promise<string> {
    switch (name) {
      case 'tensorflow-gpu':
      case 'tensorflow': {
        const { pkg, backend } = NATIVE[name];
        if (!(await tryImport(pkg))) {
          throw new TricksError(
            `--backend ${name}: ${pkg} is not installed`,
            `install it with \`npm install ${pkg}\` (it downloads libtensorflow, so it needs internet), or use --backend wasm`,
          );
        }
        await tf.setBackend(backend);
        await tf.ready();
        return name;
      }
      case 'wasm': {
        const wasm = this.providers.get('wasm');
        if (!wasm)
          throw new TricksError(
            '--backend wasm: the wasm training backend is not installed',
            'install @tricks/backend-wasm (the tricks CLI includes it), or use --backend cpu',
          );
        this.logger.info(`backend: wasm (${await wasm.activate()})`);
        return 'wasm';
      }
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
        for (const [pname, p] of this.providers) {
          try {
            const note = await p.activate();
            this.logger.info(
              `backend: ${pname} (auto: @tensorflow/tfjs-node is not installed; ${p.autoReason ?? `${pname} is available`}; ${note})`,
            );
            return pname;
          } catch (e) {
            this.logger.warn(`${pname} backend unavailable (${(e as Error).message}); falling back to cpu`);
          }
        }
        await useCpu();
        this.logger.info(`backend: cpu (auto: neither tfjs-node nor ${[...this.providers.keys()].join(' nor ') || 'wasm'} is available)`);
        return 'cpu';
      }
      default:
        throw new TricksError(`unknown backend "${name}" (option --backend)`, 'choose one of auto, tensorflow-gpu, tensorflow, wasm, cpu');
    }
  }
}
