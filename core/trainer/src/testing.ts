import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { UserConfig } from './plugin/config.js';

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
