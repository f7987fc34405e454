import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultBackendService, type BackendProvider } from './backends/select.js';
import { createTrainer, type CreateTrainerOptions } from './di/container.js';
import { MemoryLogger } from './io/logger.js';
import type { UserConfig } from './plugin/config.js';
import type { PluginDefinition } from './plugin/define.js';

/**
 * A tiny run for tests: 256 real digits, a width-8 CNN, batch 32, one epoch of 4 steps, no
 * checkpoint, on TRICKS_TEST_BACKEND (default wasm). Core's tests and @tricks/helper-plugin-test-runner share it.
 */
export function tinyConfig(over: UserConfig = {}): UserConfig {
  return {
    data: 'digits',
    model: { name: 'small-cnn', options: { width: 8 } },
    epochs: 1,
    batchSize: 32,
    evalBatchSize: 128,
    limit: { train: 256, val: 128, steps: 4 },
    checkpoint: false,
    backend: process.env.TRICKS_TEST_BACKEND ?? 'wasm',
    ...over,
  };
}

/** A preset file with a ladder: settings-only rungs (core tests load no plugin packages). */
export function writeTinyPreset(dir: string, extra = ''): string {
  const file = join(dir, 'tiny-preset.mjs');
  writeFileSync(
    file,
    `export default {
  name: 'tiny',
  description: 'a tiny ladder for tests',
  settings: {
    data: 'digits', model: { name: 'small-cnn', options: { width: 4 } }, epochs: 1, batchSize: 16, evalBatchSize: 128,
    limit: { train: 256, val: 96, steps: 3 }, backend: '${process.env.TRICKS_TEST_BACKEND ?? 'wasm'}',
    optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9 }, schedule: { name: 'multistep', milestones: [1], gamma: 0.1 },
  },
  ladder: [
    { name: 'baseline' },
    { name: '+ cosine', settings: { schedule: { name: 'cosine' } } },
    ${extra}
  ],
};
`,
  );
  return file;
}

/**
 * The helpers every package's tests share, over the built-ins and backends that package can see (core's
 * own tests pass none; @tricks/lab's tests the standard set): select the test backend once, a temp dir,
 * the tiny run with its own output, and createTrainer with the built-ins.
 */
export function testKit(o: { builtins?: PluginDefinition[]; backends?: Record<string, BackendProvider> } = {}) {
  const builtins = o.builtins ?? [];
  let ready: Promise<string> | undefined;
  const testBackend = (name = process.env.TRICKS_TEST_BACKEND ?? 'wasm') => {
    if (ready) return ready;
    const service = new DefaultBackendService(new MemoryLogger());
    for (const [n, p] of Object.entries(o.backends ?? {})) service.register(n, p);
    return (ready = service.select(name));
  };
  const tmp = (prefix = 'tricks-core-') => mkdtempSync(join(tmpdir(), prefix));
  const tiny = (over: UserConfig = {}): UserConfig => tinyConfig({ out: tmp(), ...over });
  const createTestTrainer = (user: UserConfig, opts: CreateTrainerOptions = {}) =>
    createTrainer(user, { ...opts, builtins: [...builtins, ...(opts.builtins ?? [])] });
  return { builtins, testBackend, tmp, tiny, createTestTrainer };
}
