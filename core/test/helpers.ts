import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultBackendService } from '../src/backends/select.js';
import { MemoryLogger } from '../src/io/logger.js';
import type { UserConfig } from '../src/plugin/config.js';

let ready: Promise<string> | undefined;
export const testBackend = () => (ready ??= new DefaultBackendService(new MemoryLogger()).select(process.env.TRICKS_TEST_BACKEND ?? 'wasm'));

export const tmp = (prefix = 'tricks-core-') => mkdtempSync(join(tmpdir(), prefix));

/** 256 real digits, a width-8 CNN, 4 steps of 32. */
export function tiny(over: UserConfig = {}): UserConfig {
  return {
    data: 'digits',
    model: { name: 'small-cnn', options: { width: 8 } },
    epochs: 1,
    batchSize: 32,
    evalBatchSize: 128,
    limit: { train: 256, val: 128, steps: 4 },
    checkpoint: false,
    backend: process.env.TRICKS_TEST_BACKEND ?? 'wasm',
    out: tmp(),
    ...over,
  };
}
