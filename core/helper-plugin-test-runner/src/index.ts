import * as tf from '@tensorflow/tfjs-core';
import {
  definePlugin,
  MemoryLogger,
  Rng,
  STAGE_DATA,
  STAGE_REPORT,
  TricksError,
  type Batch,
  type EpochMetrics,
  type CreateTrainerOptions,
  type PluginDefinition,
  type PluginItem,
  type RunResult,
  type Trainer,
  type UserConfig,
  type Hooks,
} from '@tricks/core';
import { testKit, tinyConfig } from '@tricks/core/testing';
import { wasmBuiltin, wasmProvider } from '@tricks/backend-wasm';
import { checkpointBuiltin } from '@tricks/checkpoint';
import { dataBuiltin } from '@tricks/data';
import { modelsBuiltin } from '@tricks/models';
import { exportBuiltin } from '@tricks/export';
import type { ContainerModule } from 'inversify';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The built-ins of a test run: checkpoints, the dataset formats, the model zoo, the wasm backend and the export formats (no report). */
export const testBuiltins: PluginDefinition[] = [
  checkpointBuiltin,
  dataBuiltin,
  modelsBuiltin,
  wasmBuiltin,
  exportBuiltin,
] as PluginDefinition[];

const kit = testKit({ builtins: testBuiltins, backends: { wasm: wasmProvider } });

/** The test backend: wasm with the tricks training kernels (the same as `--backend wasm`), selected once. */
export const useTestBackend: (name?: string) => Promise<string> = kit.testBackend;

/** createTrainer with the test built-ins. */
export const createTestTrainer: (user: UserConfig, opts?: CreateTrainerOptions) => Promise<Trainer> = kit.createTestTrainer;

/** A tiny run: 256 real digits, a width-8 CNN, batch 32, one epoch of 4 steps, no checkpoint (defined in core). */
export { tinyConfig };

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
          if (tap.type === 'promise' && fn)
            return {
              ...tap,
              fn: (...a: unknown[]) => {
                calls.push(`${hookName}:${tap.name}`);
                return fn(...a);
              },
            };
          return tap;
        }
        const fn = tap.fn;
        return {
          ...tap,
          fn: (...a: unknown[]) => {
            calls.push(`${hookName}:${tap.name}`);
            return fn(...a);
          },
        };
      },
    });
  }
}

export interface RunStepsOptions {
  plugins?: PluginItem[];
  steps?: number;
  config?: UserConfig;
  modules?: ContainerModule[];
  cwd?: string;
  /** Extra built-in plugins (fixtures such as failAfterEpoch), applied before the plugins. */
  builtins?: PluginDefinition[];
}

/** The tiny run's trainer with the plugins, its output directory, logger and tap recorder (runSteps, runFailing). */
async function startRun(opts: RunStepsOptions) {
  await useTestBackend();
  const out = mkdtempSync(join(tmpdir(), 'tricks-test-'));
  const logger = new MemoryLogger();
  const base = tinyConfig(opts.config);
  const config: UserConfig = {
    ...base,
    plugins: opts.plugins ?? base.plugins,
    out,
    limit: { ...base.limit, ...(opts.steps ? { steps: opts.steps } : {}) },
  };
  const trainer = await createTestTrainer(config, { logger, modules: opts.modules, cwd: opts.cwd, builtins: opts.builtins });
  const calls: string[] = [];
  recordTaps(trainer.hooks, calls);
  return { out, logger, trainer, calls };
}

/**
 * Runs a tiny training with the given plugins and returns the trainer, the result, the order of tap
 * calls and the tensor count at the start of every step.
 */
export async function runSteps(opts: RunStepsOptions = {}): Promise<StepRun> {
  const { out, logger, trainer, calls } = await startRun(opts);
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

/**
 * Expects createTrainer to reject the plugin's options with a message matching `pattern`. `plugin` is a
 * short name, a package name or a path (a scaffolded plugin's tests pass the path of its built entry).
 */
export async function assertOptionError(
  plugin: string,
  options: Record<string, unknown>,
  pattern: RegExp,
  opts: { cwd?: string } = {},
): Promise<string> {
  try {
    await createTestTrainer(tinyConfig({ plugins: [[plugin, options]] }), { logger: new MemoryLogger(), cwd: opts.cwd });
  } catch (e) {
    if (!(e instanceof TricksError))
      throw new Error(`expected a TricksError for ${plugin} ${JSON.stringify(options)}, got ${(e as Error).stack}`, { cause: e });
    if (!pattern.test(e.message)) throw new Error(`error message ${JSON.stringify(e.message)} does not match ${pattern}`, { cause: e });
    return e.message;
  }
  throw new Error(`options ${JSON.stringify(options)} for ${plugin} were accepted; expected an error matching ${pattern}`);
}

/** The taps of one hook in call order, from a run's calls. */
export function tapsOf(calls: string[], hook: string): string[] {
  return calls.filter((c) => c.startsWith(`${hook}:`)).map((c) => c.slice(hook.length + 1));
}

/** The hooks in which `tap` ran, in the order of their first call (e.g. ['batch', 'loss', 'epoch']). */
export function hooksOf(calls: string[], tap: string): string[] {
  const hooks: string[] = [];
  for (const c of calls) {
    const i = c.indexOf(':');
    if (c.slice(i + 1) === tap && !hooks.includes(c.slice(0, i))) hooks.push(c.slice(0, i));
  }
  return hooks;
}

/** Throws unless the plugin's taps (named `tap`) first ran in exactly these hooks, in this order. */
export function assertHookOrder(run: { calls: string[] }, tap: string, expected: string[]): void {
  const got = hooksOf(run.calls, tap);
  if (got.join() !== expected.join()) {
    throw new Error(
      `hook order of ${tap}: expected ${expected.join(' -> ')}, got ${got.join(' -> ') || '(no call)'}; calls: ${run.calls.slice(0, 40).join(', ')}`,
    );
  }
}

/**
 * Throws unless, on every call of `hook`, the named taps ran in this order (taps not named are
 * ignored): e.g. assertTapOrder(run, 'batch', ['augment', 'mixup']). Each named tap must have run.
 */
export function assertTapOrder(run: { calls: string[] }, hook: string, expected: string[]): void {
  const seen = tapsOf(run.calls, hook).filter((t) => expected.includes(t));
  const ok = seen.length > 0 && seen.length % expected.length === 0 && seen.every((t, i) => t === expected[i % expected.length]);
  if (!ok) throw new Error(`taps of ${hook}: expected ${expected.join(' -> ')} on every call, got ${seen.join(', ') || '(no call)'}`);
}

/**
 * A tiny batch for testing a batch or loss tap without a trainer: `size` images of `shape` with
 * uniform values in [0, 1), one-hot targets of `numClasses`, seeded. Dispose x and y when done.
 */
export function tinyBatch(opts: { size?: number; shape?: [number, number, number]; numClasses?: number; seed?: number } = {}): Batch {
  const { size = 8, shape = [28, 28, 1], numClasses = 10, seed = 0 } = opts;
  const rng = new Rng(seed);
  const labels = Int32Array.from({ length: size }, () => Math.floor(rng.next() * numClasses));
  const pixels = Float32Array.from({ length: size * shape[0] * shape[1] * shape[2] }, () => rng.next());
  return {
    x: tf.tensor4d(pixels, [size, ...shape]),
    y: tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), numClasses), 'float32')) as tf.Tensor2D,
    meta: { indices: Int32Array.from({ length: size }, (_, i) => i), labels, epoch: 0, step: 0 },
  };
}

/** Thrown by failAfterEpoch's fixture plugin. */
export class FixtureFailure extends Error {
  constructor(readonly epoch: number) {
    super(`fixture: failed after epoch ${epoch}`);
    this.name = 'FixtureFailure';
  }
}

/**
 * A fixture built-in that throws FixtureFailure at the end of epoch `epoch` (1-based), after that epoch's
 * checkpoint is written: a run that dies there resumes from it.
 */
export const failAfterEpoch = (epoch: number): PluginDefinition =>
  definePlugin({
    name: 'test-utils:fail',
    description: 'throws after the given epoch (tests)',
    apply(api) {
      api.hooks.epoch.tapPromise({ name: 'test-utils:fail', stage: STAGE_REPORT + 100 }, async (ctx) => {
        if (ctx.epoch + 1 === epoch) throw new FixtureFailure(epoch);
      });
    },
  }) as PluginDefinition;

/** runSteps for a run expected to fail: the error it threw, with the run (result undefined). */
export async function runFailing(opts: RunStepsOptions): Promise<Omit<StepRun, 'result'> & { error: unknown }> {
  const { out, logger, trainer, calls } = await startRun(opts);
  let error: unknown;
  await trainer.run().catch((e) => (error = e));
  if (!error) throw new Error('runFailing: the run did not fail');
  return { trainer, error, calls, tensorsAtStep: [], logger, out };
}

/** The figures of an epoch that a restart must reproduce (not its speed); lr is the last step's. */
const PARITY_KEYS = ['train_loss', 'val_loss', 'val_top1', 'val_top5', 'lr'];

export interface ResumeParity {
  /** The per-epoch figures (train/val loss, top-1, top-5, lr, and any plugin metric) of the uninterrupted run. */
  full: Record<string, number>[];
  /** The same of the run that failed after epoch `cut` and was resumed from its checkpoint. */
  resumed: Record<string, number>[];
  /** The trainers of both runs (their ctx, their plugins' final state). */
  trainers: { full: Trainer; resumed: Trainer };
  /** The log lines of the uninterrupted run, of the run that was cut (every part before the last) and of the resumed part. */
  logs: { full: string[]; cut: string[]; resumed: string[] };
  /** The bytes of each of `files` (relative to the run's folder) at the end of both runs; undefined: not written. */
  files: Record<string, { full?: Buffer; resumed?: Buffer }>;
}

export interface ParityOptions extends RunStepsOptions {
  epochs: number;
  /** Metrics beyond train/val loss, top-1 and top-5 to compare (a plugin's own: ema_val_top1, lr...). */
  keys?: string[];
  /** Files of the run's folder to read at the end of both runs (reports, a best model...), for the test to compare. */
  files?: string[];
}

/** The run's config for a parity check: the tiny run with `epochs` epochs and checkpoints on, into `out`. */
function parityConfig(opts: RunStepsOptions & { epochs: number }, out: string): UserConfig {
  const base = tinyConfig(opts.config);
  return {
    ...base,
    epochs: opts.epochs,
    checkpoint: true,
    plugins: opts.plugins ?? base.plugins,
    out,
    limit: { ...base.limit, ...(opts.steps ? { steps: opts.steps } : {}) },
  };
}

/**
 * Trains `epochs` epochs straight into one folder, then stops a second run of the same config with `stop`
 * (a fixture built-in that ends it) into another, resumes it and returns both runs' per-epoch figures.
 */
async function parity(
  opts: ParityOptions,
  stops: {
    builtin: PluginDefinition;
    run: (t: Trainer, resume: boolean) => Promise<unknown>;
    expect: (e: unknown) => boolean;
    what: string;
  }[],
): Promise<ResumeParity> {
  await useTestBackend();
  const keys = (rows: EpochMetrics[]) =>
    rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => PARITY_KEYS.includes(k) || (opts.keys ?? []).includes(k))));
  const dirs = [mkdtempSync(join(tmpdir(), 'tricks-parity-')), mkdtempSync(join(tmpdir(), 'tricks-parity-'))];
  const make = (out: string, logger: MemoryLogger, extra: PluginDefinition[] = []) =>
    createTestTrainer(parityConfig(opts, out), {
      logger,
      modules: opts.modules,
      cwd: opts.cwd,
      builtins: [...(opts.builtins ?? []), ...extra],
    });
  try {
    const logs = { full: new MemoryLogger(), cut: new MemoryLogger(), resumed: new MemoryLogger() };
    const full = await make(dirs[0]!, logs.full);
    const a = await full.run();
    // each stop ends one part of the run (the first a fresh run, the others resumes); the last part runs to the end
    for (const [i, stop] of stops.entries()) {
      const cutting = await make(dirs[1]!, logs.cut, [stop.builtin]);
      const err = await stop.run(cutting, i > 0).then(
        () => undefined,
        (e) => e,
      );
      if (!stop.expect(err)) throw new Error(`parity check: the cut run did not stop ${stop.what}: ${err}`);
      cutting.dispose();
    }
    const resumed = await make(dirs[1]!, logs.resumed);
    const b = await resumed.run({ resume: true });
    const read = (dir: string, f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f)) : undefined);
    return {
      full: keys(a.epochs),
      resumed: keys(b.epochs),
      trainers: { full, resumed },
      logs: { full: logs.full.lines, cut: logs.cut.lines, resumed: logs.resumed.lines },
      files: Object.fromEntries((opts.files ?? []).map((f) => [f, { full: read(dirs[0]!, f), resumed: read(dirs[1]!, f) }])),
    };
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

/**
 * The restart-parity check: trains `epochs` epochs straight, then the same config again, failing after
 * epoch `cut` (its checkpoint written), and resumes it. Same seed and backend: the two must agree
 * exactly, which they only do when every plugin's state survived the checkpoint.
 */
export function resumeParity(opts: ParityOptions & { cut?: number }): Promise<ResumeParity> {
  const cut = opts.cut ?? 1;
  return parity(opts, [
    {
      builtin: failAfterEpoch(cut),
      run: (t) => t.run(),
      expect: (e) => e instanceof FixtureFailure,
      what: `after epoch ${cut}`,
    },
  ]);
}

/**
 * A fixture built-in that aborts `controller` after global step `step` (1-based): the trainer finishes that
 * step, its interrupt hook writes the mid-epoch checkpoint, and the run throws Interrupted, as on SIGTERM.
 */
export const abortAfterStep = (step: number, controller: AbortController): PluginDefinition =>
  definePlugin({
    name: 'test-utils:abort',
    description: 'aborts the run after the given step (tests)',
    apply(api) {
      api.hooks.stepEnd.tap({ name: 'test-utils:abort', stage: STAGE_REPORT + 100 }, (ctx) => {
        if (ctx.step === step) controller.abort('SIGTERM');
      });
    },
  }) as PluginDefinition;

/**
 * The interrupt-parity check: trains `epochs` epochs straight, then the same config again, stopped by an
 * AbortSignal after global step `at` (mid-epoch: pick one that is not a multiple of the steps per epoch),
 * which writes the checkpoint a SIGTERM writes; then resumes it. With several steps, the resumed run is
 * stopped again at each next one and resumed again. Same seed and backend: the per-epoch figures must
 * agree exactly, which they only do when every plugin's state, its running sums of the interrupted
 * epoch and every generator it draws from survived the checkpoint.
 */
export function interruptParity(opts: ParityOptions & { at: number | number[] }): Promise<ResumeParity> {
  return parity(
    opts,
    [opts.at].flat().map((at) => {
      const controller = new AbortController();
      return {
        builtin: abortAfterStep(at, controller),
        run: (t: Trainer, resume: boolean) => t.run({ resume, signal: controller.signal }),
        expect: (e: unknown) => (e as Error)?.name === 'Interrupted',
        what: `after step ${at} (Interrupted)`,
      };
    }),
  );
}

/**
 * Throws unless the resumed run's figures equal the uninterrupted run's: exactly (tolerance 0), or each
 * within `tolerance` (absolute); the message lists every figure that differs.
 */
export function assertParity(p: Pick<ResumeParity, 'full' | 'resumed'>, tolerance = 0): void {
  const diffs: string[] = [];
  if (p.full.length !== p.resumed.length) diffs.push(`${p.full.length} epochs straight, ${p.resumed.length} resumed`);
  p.full.forEach((row, e) => {
    for (const k of new Set([...Object.keys(row), ...Object.keys(p.resumed[e] ?? {})])) {
      const a = row[k],
        b = p.resumed[e]?.[k];
      const same = a === b || (Number.isNaN(a) && Number.isNaN(b)) || (tolerance > 0 && Math.abs(a! - b!) <= tolerance);
      if (!same) diffs.push(`epoch ${e + 1} ${k}: ${a} straight, ${b} resumed`);
    }
  });
  if (diffs.length) throw new Error(`resume parity: ${diffs.join('; ')}`);
}

/** Throws unless each of `files` (default: all the check read) was written by both runs with the same bytes. */
export function assertSameFiles(p: Pick<ResumeParity, 'files'>, files = Object.keys(p.files)): void {
  const bad = files.filter((f) => {
    const { full, resumed } = p.files[f] ?? {};
    return !full || !resumed || !full.equals(resumed);
  });
  const say = (f: string) => {
    const { full, resumed } = p.files[f] ?? {};
    return !full || !resumed ? `${f} (${!full ? 'not written straight' : 'not written resumed'})` : f;
  };
  if (bad.length) throw new Error(`resume parity: ${bad.map(say).join(', ')} differ`);
}

/**
 * Whether onnxruntime's fused int8 kernels compute QDQ models exactly on this CPU. On x86 without VNNI (AVX2 and
 * AVX-512 without avx512_vnni / avx_vnni), ORT's u8s8 kernels use VPMADDUBSW, whose 16-bit pair sums saturate
 * (onnxruntime's quantization docs; OpenVINO's "saturation issue"): an int8 model's top-1 may then move by a few
 * points against its simulation. Tests of ORT's int8 results are exact only where this is true; the QDQ graph's
 * semantics are checked on every CPU with graph optimizations off.
 */
export function int8KernelsExact(): boolean {
  if (process.arch !== 'x64' || !existsSync('/proc/cpuinfo')) return true;
  const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '';
  return /\b(avx512_vnni|avx_vnni)\b/.test(flags);
}

/**
 * An export report's int8 ONNX artifact against its simulation: within `top1Tolerance` and agreement >= 0.98
 * where ORT's int8 kernels are exact (int8KernelsExact); on x86 without VNNI, within 5 points and agreement
 * >= 0.85, printing the measured gap (saturation moves a few predictions, a broken model moves many).
 */
export function assertInt8Artifact(onnx: { top1: number; reference_top1: number; agreement: number }, top1Tolerance: number): void {
  const exact = int8KernelsExact();
  if (!exact)
    console.log(
      `    (x86 without VNNI: ORT int8 top-1 ${onnx.top1} against the simulation's ${onnx.reference_top1}, agreement ${onnx.agreement})`,
    );
  const [tol, agree] = exact ? [top1Tolerance, 0.98] : [0.05, 0.85];
  const gap = Math.abs(onnx.top1 - onnx.reference_top1);
  if (gap > tol) throw new Error(`int8 ONNX top-1 ${onnx.top1} is ${gap} from the simulation's ${onnx.reference_top1} (at most ${tol})`);
  if (onnx.agreement < agree)
    throw new Error(`int8 ONNX agrees with the simulation on ${onnx.agreement} of the images (at least ${agree})`);
}
