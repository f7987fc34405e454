import * as tf from '@tensorflow/tfjs-core';
import {
  createTrainer, DefaultBackendService, MemoryLogger, STAGE_DATA, TricksError,
  type PluginItem, type RunResult, type Trainer, type UserConfig, type Hooks,
} from '@tricks/core';
import type { ContainerModule } from 'inversify';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let backendReady: Promise<string> | undefined;

/** The test backend: wasm with the tricks training kernels (the same as `--backend wasm`). */
export function useTestBackend(name = process.env.TRICKS_TEST_BACKEND ?? 'wasm'): Promise<string> {
  backendReady ??= new DefaultBackendService(new MemoryLogger()).select(name);
  return backendReady;
}

/** A tiny run: 256 real digits, a width-8 CNN, batch 32, one epoch of `steps` steps, no checkpoint. */
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

export interface StepRun {
  trainer: Trainer;
  result: RunResult;
  /** "hook:tap" for every tap call, in order. */
  calls: string[];
  /** tf.memory().numTensors at the start of each step. */
  tensorsAtStep: number[];
  logger: MemoryLogger;
  out: string;
}

/** Records every tap call as "hook:tapName" (install before the plugins tap, or after: both work). */
export function recordTaps(hooks: Hooks, calls: string[]): void {
  for (const [hookName, hook] of Object.entries(hooks)) {
    (hook as { intercept(i: object): void }).intercept({
      register(tap: { name: string; fn?: (...a: unknown[]) => unknown; type: string }) {
        if (tap.type !== 'sync' || !tap.fn) {
          const fn = tap.fn;
          if (tap.type === 'promise' && fn) return { ...tap, fn: (...a: unknown[]) => { calls.push(`${hookName}:${tap.name}`); return fn(...a); } };
          return tap;
        }
        const fn = tap.fn;
        return { ...tap, fn: (...a: unknown[]) => { calls.push(`${hookName}:${tap.name}`); return fn(...a); } };
      },
    });
  }
}

/**
 * Runs a tiny training with the given plugins and returns the trainer, the result, the order of tap
 * calls and the tensor count at the start of every step.
 */
export async function runSteps(opts: { plugins?: PluginItem[]; steps?: number; config?: UserConfig; modules?: ContainerModule[]; cwd?: string } = {}): Promise<StepRun> {
  await useTestBackend();
  const out = mkdtempSync(join(tmpdir(), 'tricks-test-'));
  const logger = new MemoryLogger();
  const base = tinyConfig(opts.config);
  const config: UserConfig = { ...base, plugins: opts.plugins ?? base.plugins, out, limit: { ...base.limit, ...(opts.steps ? { steps: opts.steps } : {}) } };
  const trainer = await createTrainer(config, { logger, modules: opts.modules, cwd: opts.cwd });
  const calls: string[] = [];
  recordTaps(trainer.hooks, calls);
  const tensorsAtStep: number[] = [];
  trainer.hooks.batch.tap({ name: 'test-utils:memory', stage: STAGE_DATA - 1000 }, (b) => {
    // Inside the step's tidy: the batch tensors (x, y) exist already; the count before them is what persists.
    tensorsAtStep.push(tf.memory().numTensors - 2);
    return b;
  });
  const result = await trainer.run();
  return { trainer, result, calls, tensorsAtStep, logger, out };
}

/** Removes a run's output directory. */
export function cleanup(run: { out: string }): void {
  rmSync(run.out, { recursive: true, force: true });
}

/** Throws unless the tensor count at the start of each step (after the first) is the same. */
export function assertNoLeak(run: StepRun): void {
  const t = run.tensorsAtStep.slice(1);
  if (t.length < 2) throw new Error(`assertNoLeak: need at least 3 steps, got ${run.tensorsAtStep.length}`);
  if (t.some((n) => n !== t[0])) throw new Error(`tensor leak: tensors at the start of each step ${run.tensorsAtStep.join(', ')}`);
}

/** Expects createTrainer to reject the plugin's options with a message matching `pattern`. */
export async function assertOptionError(plugin: string, options: Record<string, unknown>, pattern: RegExp): Promise<string> {
  try {
    await createTrainer(tinyConfig({ plugins: [[plugin, options]] }), { logger: new MemoryLogger() });
  } catch (e) {
    if (!(e instanceof TricksError)) throw new Error(`expected a TricksError for ${plugin} ${JSON.stringify(options)}, got ${(e as Error).stack}`);
    if (!pattern.test(e.message)) throw new Error(`error message ${JSON.stringify(e.message)} does not match ${pattern}`);
    return e.message;
  }
  throw new Error(`options ${JSON.stringify(options)} for ${plugin} were accepted; expected an error matching ${pattern}`);
}

/** The taps of one hook in call order, from a run's calls. */
export function tapsOf(calls: string[], hook: string): string[] {
  return calls.filter((c) => c.startsWith(`${hook}:`)).map((c) => c.slice(hook.length + 1));
}
