import type { UserConfig } from './plugin/config.js';

/**
 * A tiny run for tests: 256 real digits, a width-8 CNN, batch 32, one epoch of 4 steps, no
 * checkpoint, on TRICKS_TEST_BACKEND (default wasm). Core's tests and @tricks/plugin-test-utils share it.
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
