import { spawn, type ChildProcess } from 'node:child_process';
import { threadsPerJob } from '@tricks/backend-wasm';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TricksError, writeFileAtomic, ConsoleLogger, type Logger, type UserConfig } from '@tricks/core';
import { loadLadder, planAblation, type RunSpec } from './plan.js';
import { readResult, type RunRecord } from './run.js';
import { duration, summarize, type AblationSummary } from './summary.js';

export interface AblateOptions {
  preset: string;
  seeds: number;
  overrides: UserConfig;
  out: string;
  /** Runs at once, each in its own child process. */
  jobs?: number;
  /** The CLI each run's child process runs as `BIN ablate-run SPEC` (the tricks CLI passes its own bin/tricks.js). */
  bin: string;
  teacher?: string;
  logger?: Logger;
  cwd?: string;
  /** Stop on SIGINT/SIGTERM: children checkpoint and exit; the next call resumes. */
  handleSignals?: boolean;
  /** Run only these rungs: 1-based indices, ranges (2-4) or names; the summary covers every finished rung in OUT. */
  rungs?: string[];
}

/** The ladder indices (0-based) that `rungs` names: 1-based indices, ranges a-b, or rung names (case-insensitive). */
export function selectRungs(rungs: string[], names: string[]): Set<number> {
  const picked = new Set<number>();
  const list = names.map((n, i) => `${i + 1} "${n}"`).join(', ');
  for (const raw of rungs
    .flatMap((r) => r.split(','))
    .map((r) => r.trim())
    .filter(Boolean)) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(raw);
    if (range) {
      const a = Number(range[1]),
        b = Number(range[2] ?? range[1]);
      if (a < 1 || b > names.length || a > b)
        throw new TricksError(`--rungs ${raw}: the ladder has rungs 1 to ${names.length}`, `rungs: ${list}`);
      for (let i = a; i <= b; i++) picked.add(i - 1);
      continue;
    }
    const i = names.findIndex((n) => n.toLowerCase() === raw.toLowerCase());
    if (i < 0) throw new TricksError(`--rungs: no rung named "${raw}"`, `rungs: ${list}`);
    picked.add(i);
  }
  return picked;
}

export interface AblateResult {
  summary: AblationSummary;
  runs: RunRecord[];
  /** Runs that failed (with their log file), or were not started because a run they need failed. */
  failed: { id: string; log: string; reason: string }[];
  /** Runs skipped because result.json existed already. */
  skipped: string[];
}

/**
 * The time left at this session's pace: the mean wall time of a run finished here, times the runs left, over the
 * jobs that run at once. (Wall time since the start per finished run already divides by the jobs: dividing that
 * again halved the ETA at --jobs 2.)
 */
export function etaSeconds(meanRunSeconds: number, left: number, jobs: number): number {
  return (meanRunSeconds * left) / Math.max(1, Math.min(jobs, left));
}

/** Spawns `tricks ablate-run SPEC` with its output appended to OUT/runs/<id>/train.log. */
function spawnRun(spec: RunSpec, cwd: string, jobs: number, bin: string): { child: ChildProcess; log: string; done: Promise<number> } {
  mkdirSync(spec.out, { recursive: true });
  const log = join(spec.out, 'train.log');
  const stream = createWriteStream(log, { flags: 'a' });
  const child = spawn(process.execPath, [bin, 'ablate-run', join(spec.out, 'spec.json')], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TRICKS_WASM_THREADS: threadsPerJob(jobs) },
  }); // the cores shared between the runs at once
  child.stdout!.pipe(stream, { end: false });
  child.stderr!.pipe(stream, { end: false });
  const done = new Promise<number>((res) => {
    child.on('close', (code, signal) => {
      stream.end();
      res(code ?? (signal === 'SIGTERM' ? 143 : 1));
    });
  });
  return { child, log, done };
}

/**
 * Runs a preset's ladder: every rung x seed as its own `tricks train`-equivalent child process,
 * `jobs` at a time (a distillation rung waits for its teacher). Finished runs are skipped, interrupted
 * ones resume from their checkpoint. Writes OUT/plan.json, and at the end ablation.json, ablation.md
 * and the charts.
 */
export async function runAblation(o: AblateOptions): Promise<AblateResult> {
  const logger = o.logger ?? new ConsoleLogger();
  const cwd = o.cwd ?? process.cwd();
  const out = resolve(cwd, o.out);
  const jobs = o.jobs ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1) throw new TricksError(`--jobs ${jobs}: must be an integer >= 1`);
  const { definition } = await loadLadder(o.preset, cwd);
  const planned = await planAblation({ preset: o.preset, seeds: o.seeds, overrides: o.overrides, out, teacher: o.teacher, cwd });
  await writeFileAtomic(join(out, 'plan.json'), JSON.stringify(planned, null, 1));
  const picked = o.rungs?.length
    ? selectRungs(
        o.rungs,
        definition.ladder!.map((r) => r.name),
      )
    : undefined;
  const chosen = picked ? planned.filter((s) => !s.role && picked.has(s.ladderStep)) : planned;
  // the teacher a chosen rung needs runs too
  const specs = picked ? planned.filter((s) => chosen.includes(s) || chosen.some((c) => c.dependsOn?.includes(s.id))) : planned;
  logger.info(
    `ablate: preset ${definition.name}, ${picked ? `rungs ${[...picked].map((i) => i + 1).join(', ')} of ${definition.ladder!.length}` : `${definition.ladder!.length} steps`} x ${o.seeds} seed(s) = ${specs.filter((s) => !s.role).length} runs${specs.some((s) => s.role) ? ' + a teacher' : ''}, ${jobs} at a time; out ${out}`,
  );

  const records = new Map<string, RunRecord>();
  const failed: AblateResult['failed'] = [];
  const skipped: string[] = [];
  for (const s of specs) {
    const r = await readResult(s);
    if (r) {
      records.set(s.id, r);
      skipped.push(s.id);
    }
  }
  if (skipped.length) logger.info(`ablate: ${skipped.length} run(s) finished already: ${skipped.join(', ')}`);

  const pending = specs.filter((s) => !records.has(s.id));
  const running = new Map<string, { child: ChildProcess; done: Promise<number>; log: string }>();
  let interrupted: string | undefined;
  const onSignal = (sig: NodeJS.Signals) => () => {
    if (interrupted) return;
    interrupted = sig;
    logger.warn(
      `${sig}: stopping ${running.size} run(s) after their current step (they write a checkpoint); run the same command again to continue`,
    );
    for (const r of running.values()) r.child.kill(sig);
  };
  const handlers = o.handleSignals ? { SIGINT: onSignal('SIGINT'), SIGTERM: onSignal('SIGTERM') } : undefined;
  if (handlers) for (const [s, h] of Object.entries(handlers)) process.on(s, h);
  const total = specs.length;
  const t0 = performance.now();
  let finishedHere = 0,
    secondsHere = 0;
  const eta = () => {
    const left = total - records.size;
    if (!finishedHere || !left) return '';
    return `, eta ${duration(etaSeconds(secondsHere / finishedHere, left, jobs))}`;
  };
  try {
    while ((pending.length || running.size) && !(interrupted && !running.size)) {
      // Drop runs whose dependencies failed.
      for (let i = pending.length - 1; i >= 0; i--) {
        const bad = pending[i].dependsOn?.find((d) => failed.some((f) => f.id === d));
        if (bad) {
          failed.push({ id: pending[i].id, log: '', reason: `needs ${bad}, which failed` });
          pending.splice(i, 1);
        }
      }
      while (!interrupted && running.size < jobs) {
        const i = pending.findIndex((s) => (s.dependsOn ?? []).every((d) => records.has(d)));
        if (i < 0) break;
        const spec = pending.splice(i, 1)[0];
        await writeFileAtomic(join(spec.out, 'spec.json'), JSON.stringify(spec, null, 1));
        const r = spawnRun(spec, cwd, jobs, o.bin);
        logger.info(`ablate: [${records.size + running.size + 1}/${total}] start ${spec.id} (${spec.trick}); log ${r.log}`);
        const started = performance.now();
        running.set(spec.id, {
          ...r,
          done: r.done.then(async (code) => {
            if (code === 0) {
              const rec = await readResult(spec).catch((e: Error) => {
                failed.push({ id: spec.id, log: r.log, reason: e.message });
                return undefined;
              });
              if (rec) {
                records.set(spec.id, rec);
                finishedHere++;
                secondsHere += (performance.now() - started) / 1000;
                logger.info(
                  `ablate: done ${spec.id}: top-1 ${(rec.top1 * 100).toFixed(2)} % in ${duration(rec.seconds)}${rec.resumedFrom !== undefined ? ` (resumed at epoch ${rec.resumedFrom + 1})` : ''}; ${records.size}/${total} finished, ${duration((performance.now() - t0) / 1000)} so far${eta()}`,
                );
              } else if (!failed.some((f) => f.id === spec.id))
                failed.push({ id: spec.id, log: r.log, reason: 'exited 0 without result.json' });
            } else if (interrupted && (code === 143 || code === 130)) {
              logger.info(`ablate: ${spec.id} stopped with a checkpoint`);
            } else {
              failed.push({ id: spec.id, log: r.log, reason: `exit code ${code}` });
              logger.warn(`ablate: ${spec.id} failed (exit code ${code}); see ${r.log}`);
            }
            running.delete(spec.id);
            return code;
          }),
        });
      }
      if (!running.size) {
        if (pending.length && !interrupted) {
          // Nothing can start: every pending run waits for one that failed (handled above) — defensive stop.
          for (const s of pending.splice(0)) failed.push({ id: s.id, log: '', reason: 'its dependencies did not finish' });
        }
        break;
      }
      await Promise.race([...running.values()].map((r) => r.done));
    }
  } finally {
    if (handlers) for (const [s, h] of Object.entries(handlers)) process.off(s, h);
  }
  if (interrupted) {
    throw new TricksError(
      `ablation stopped by ${interrupted}: ${records.size} of ${total} runs finished, the others have checkpoints in ${join(out, 'runs')}`,
      'run the same command again to continue where it stopped',
    );
  }
  // every finished run of the plan, also rungs an earlier call ran (--rungs runs part of the ladder at a time)
  for (const s of planned)
    if (!records.has(s.id))
      await readResult(s).then(
        (r) => r && records.set(s.id, r),
        () => undefined,
      );
  const runs = planned.map((s) => records.get(s.id)).filter((r): r is RunRecord => Boolean(r));
  const summary = await summarize(runs, out, { title: `Ablation: ${definition.name}` });
  logger.info(`ablate: wrote ${join(out, 'ablation.html')}, ablation.md, ablation.json, ladder.png, curves.png`);
  return { summary, runs, failed, skipped };
}
