import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type PluginDefinition, TricksError, type EpochMetrics, writeFileAtomic, type Logger, type UserConfig } from '@tricks/core';
import { DirCheckpointer } from '@tricks/checkpoint';
import { createStandardTrainer } from '../standard.js';
import type { RunSpec } from './plan.js';

/** What one finished run of an ablation saved in OUT/runs/<id>/result.json. */
export interface RunRecord {
  id: string;
  stepName: string;
  trick: string;
  ladderStep: number;
  seed: number;
  /** Validation top-1 after the last epoch (not the best epoch: no selection on the validation set). */
  top1: number;
  /** Training + evaluation seconds summed over epochs (a resumed run counts each epoch once). */
  seconds: number;
  epochs: EpochMetrics[];
  /** The epoch (0-based, epochs done) the run was resumed from, when it was interrupted. */
  resumedFrom?: number;
  role?: 'teacher';
  /** Hash of what defines the run (preset, step, seed, overrides): a stale result.json is detected. */
  specHash?: string;
  backend?: string;
  plugins?: string[];
  model?: string;
}

/** Hash of the parts of a spec that define its result (not its id or folder). */
export function specHash(spec: RunSpec): string {
  const { modules: _m, out: _o, ...overrides } = spec.overrides as UserConfig;
  return createHash('sha256')
    .update(JSON.stringify({ preset: spec.preset, ladderStep: spec.ladderStep, seed: spec.seed, overrides }))
    .digest('hex')
    .slice(0, 16);
}

/** The saved record of a finished run, or undefined. Throws when it belongs to a different spec. */
export async function readResult(spec: RunSpec): Promise<RunRecord | undefined> {
  const file = join(spec.out, 'result.json');
  if (!existsSync(file)) return undefined;
  let rec: RunRecord;
  try {
    rec = JSON.parse(await readFile(file, 'utf8')) as RunRecord;
  } catch (e) {
    throw new TricksError(`${file}: not valid JSON (${(e as Error).message})`, 'delete that file to train the run again');
  }
  const h = specHash(spec);
  if (rec.specHash && rec.specHash !== h) {
    throw new TricksError(
      `${file} holds the result of a different configuration of run ${spec.id} (changed flags or preset since it ran)`,
      'use a new --out directory for the new configuration, or delete that run folder to redo it',
    );
  }
  return rec;
}

/**
 * Runs one ablation run, idempotently: returns the saved result.json when the run finished, resumes
 * from spec.out/checkpoint when it was interrupted, else trains from scratch. Writes
 * spec.out/result.json atomically at the end (the trainer also writes run.json and report.html there).
 */
export async function runOne(
  spec: RunSpec,
  opts: { logger?: Logger; handleSignals?: boolean; signal?: AbortSignal; cwd?: string; builtins?: PluginDefinition[] } = {},
): Promise<RunRecord> {
  const done = await readResult(spec);
  if (done) return done;
  const store = new DirCheckpointer(opts.logger);
  const ckpt = store.exists(join(spec.out, 'checkpoint'));
  // a damaged state.json is one TricksError naming it (a damaged newest generation falls back to the previous)
  const resumedFrom = ckpt ? (await store.loadState(join(spec.out, 'checkpoint'))).epoch : undefined;
  const user: UserConfig = { ...spec.overrides, preset: spec.preset, seed: spec.seed, out: spec.out, checkpoint: true };
  const trainer = await createStandardTrainer(user, {
    ladderStep: spec.ladderStep,
    logger: opts.logger,
    cwd: opts.cwd,
    builtins: opts.builtins,
  });
  let result;
  try {
    // the rung's folder is the ablation's own: a run killed before its first checkpoint starts again there
    const resume = resumedFrom !== undefined;
    result = await trainer.run({ resume, overwrite: !resume, handleSignals: opts.handleSignals, signal: opts.signal });
  } catch (e) {
    // the run's own error is the one to report: freeing what a failed run left (a damaged wasm heap) may fail too
    try {
      trainer.dispose();
    } catch (d) {
      opts.logger?.warn(`ablate: freeing run ${spec.id} after its error failed too: ${(d as Error).message}`);
    }
    throw e;
  }
  trainer.dispose(); // a worker runs many trainings in one process
  const last = result.epochs.at(-1);
  if (!last) throw new TricksError(`run ${spec.id} finished without an epoch`);
  const record: RunRecord = {
    id: spec.id,
    stepName: spec.stepName,
    trick: spec.trick,
    ladderStep: spec.ladderStep,
    seed: spec.seed,
    top1: last.val_top1,
    seconds: result.epochs.reduce((s, e) => s + e.seconds, 0),
    epochs: result.epochs,
    ...(resumedFrom !== undefined ? { resumedFrom } : {}),
    ...(spec.role ? { role: spec.role } : {}),
    specHash: specHash(spec),
    backend: trainer.ctx.backend,
    plugins: trainer.config.plugins.map((p) => p.key),
    model: trainer.config.model.name,
  };
  await writeFileAtomic(join(spec.out, 'result.json'), JSON.stringify(record, null, 1));
  return record;
}
