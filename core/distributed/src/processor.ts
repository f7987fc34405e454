/**
 * The sandboxed BullMQ processor: `tricks worker` forks a child process that loads this file and
 * trains one job at a time in it. Training blocks the child's event loop for whole steps; the
 * worker process, whose event loop stays free, keeps renewing the job's lock in Redis meanwhile.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { SandboxedJob } from 'bullmq';
import { DirCheckpointer } from '@tricks/checkpoint';
import { type Logger, resolveConfig } from '@tricks/core';
import { appendAttempt, diffConfigs, ensureDir, type AttemptEvent, type RunJobData, type RunProgress } from './jobs.js';
import { loadRunner, specUserConfig, type RunRecord } from './runner.js';

// If the worker process dies (SIGKILL, OOM), this child would otherwise go on training and write
// checkpoints and a result next to the worker that now holds the job: stop at once, writing nothing.
process.on('disconnect', () => process.exit(70));

const DEPENDENCY_POLL_MS = Number(process.env.TRICKS_DEPENDENCY_POLL_MS ?? 15_000);

const workerName = () => `${hostname()}:${process.ppid}`;

/** Prefixes the trainer's lines with the run id and turns "epoch i/n" lines into job progress. */
class JobLogger implements Logger {
  private resumedFrom: number | undefined;
  constructor(
    private readonly id: string,
    private readonly report: (p: RunProgress) => void,
  ) {}
  info(m: string): void {
    process.stderr.write(`[${this.id}] ${m}\n`);
    const r = /^resumed from .*: epoch (\d+)/.exec(m);
    if (r) this.resumedFrom = Number(r[1]) - 1;
    const e = /^epoch (\d+)\/(\d+):/.exec(m);
    if (e) this.report({ epoch: Number(e[1]), epochs: Number(e[2]), worker: workerName(), resumedFrom: this.resumedFrom });
  }
  warn(m: string): void {
    process.stderr.write(`[${this.id}] warning: ${m}\n`);
  }
  debug(m: string): void {
    if (process.env.TRICKS_VERBOSE) process.stderr.write(`[${this.id}] ${m}\n`);
  }
}

function checkpointEpoch(out: string): number {
  const dir = new DirCheckpointer().exists(join(out, 'checkpoint'));
  if (!dir) return 0;
  try {
    return Number((JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { epoch?: number }).epoch ?? 0);
  } catch {
    return 0;
  }
}

/** Appends this attempt's events to the run's attempts.jsonl. */
function attemptLog(job: SandboxedJob<RunJobData, RunRecord>) {
  const base = { job: String(job.id), attempt: (job.attemptsMade ?? 0) + 1, worker: workerName(), pid: process.pid };
  return (e: Omit<AttemptEvent, keyof typeof base | 'time'>) =>
    appendAttempt(job.data.spec.out, { ...e, ...base, time: new Date().toISOString() });
}

export default async function processRun(
  job: SandboxedJob<RunJobData, RunRecord>,
  token?: string,
  signal?: AbortSignal,
): Promise<RunRecord> {
  // This process's pid first: the worker SIGTERMs a job's process that it learns of after its own stop began
  // (BullMQ's cancel message does not reach a job that was still starting).
  void job.updateProgress({ epoch: 0, epochs: 0, worker: workerName(), pid: process.pid }).catch(() => {});
  // The stop of this job: the worker's shutdown (BullMQ's abort, or a SIGTERM the worker sends), or a signal to
  // this process (Ctrl-C reaches the whole process group). The trainer finishes its step and checkpoints; a
  // second signal exits at once. A job stopped before its training starts goes back to the queue untouched.
  const stop = new AbortController();
  const stopNow = (why: string) => {
    if (!stop.signal.aborted) process.stderr.write(`[${job.data.spec.id}] ${why}: finishing the current step, then writing a checkpoint\n`);
    stop.abort(why);
  };
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => (++signals > 1 ? process.exit(sig === 'SIGTERM' ? 143 : 130) : stopNow(sig));
  const onAbort = () => {
    if (String(signal?.reason) === 'shutdown') return stopNow('worker shutdown');
    // The job's lock is lost: another worker may hold the job now. Leave without writing anything.
    attemptLog(job)({ event: 'abandoned', error: String(signal?.reason) });
    process.exit(75);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await runJob(job, token, stop.signal);
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    signal?.removeEventListener('abort', onAbort);
  }
}

async function runJob(job: SandboxedJob<RunJobData, RunRecord>, token: string | undefined, stop: AbortSignal): Promise<RunRecord> {
  const { spec } = job.data;
  const backend = process.env.TRICKS_WORKER_BACKEND;
  if (backend) spec.overrides = { ...spec.overrides, backend };
  const log = attemptLog(job);

  // Every machine must train what the coordinator resolved: a different plugin version or preset
  // here would make the study compare apples with pears.
  const here = await resolveConfig(specUserConfig(spec), { ladderStep: spec.ladderStep });
  const diff = diffConfigs(job.data.config, here.config);
  if (diff.length) {
    throw new Error(
      `worker ${workerName()} resolves run ${spec.id} differently from the coordinator (${diff.join('; ')}): install the same versions of tricks and its plugins on every machine`,
    );
  }

  // A run that needs another run's result (distillation needs its teacher) waits for it in the
  // delayed set, without using up an attempt.
  const missing = (job.data.after ?? []).filter((d) => !existsSync(join(d.out, 'result.json')));
  if (missing.length) {
    process.stderr.write(`[${spec.id}] waiting for ${missing.map((d) => d.id).join(', ')} to finish\n`);
    await job.moveToDelayed(Date.now() + DEPENDENCY_POLL_MS, token);
    const w = new Error(`run ${spec.id} waits for ${missing.map((d) => d.id).join(', ')}`);
    w.name = 'DelayedError';
    throw w;
  }

  await ensureDir(spec.out);
  const reused = existsSync(join(spec.out, 'result.json'));
  const fromEpoch = checkpointEpoch(spec.out);
  log({ event: 'start', checkpointEpoch: fromEpoch });
  const progress = (p: RunProgress) => void job.updateProgress({ ...p, pid: process.pid } as unknown as object).catch(() => {});
  progress({ epoch: fromEpoch, epochs: here.config.epochs, worker: workerName(), ...(fromEpoch ? { resumedFrom: fromEpoch } : {}) });
  const requeue = async (): Promise<never> => {
    log({ event: 'interrupted' });
    // Back to the queue without using up an attempt; the next worker resumes from the checkpoint.
    await job.moveToWait(token);
    const w = new Error(`run ${spec.id} interrupted by a worker shutdown; back in the queue`);
    w.name = 'WaitingError';
    throw w;
  };
  if (stop.aborted) return requeue();

  const runner = await loadRunner();
  const logger = new JobLogger(spec.id, progress);
  try {
    const record = await runner.runOne(spec, { logger, signal: stop });
    log({ event: reused ? 'result-reused' : 'result-written', resumedFrom: record.resumedFrom, top1: record.top1 });
    return record;
  } catch (e) {
    const err = e as Error;
    if (err?.name === 'Interrupted') return requeue();
    log({ event: 'error', error: String(err?.message ?? err).slice(0, 2000) });
    throw e;
  } finally {
    // This process trains job after job: free the finished run's weights and optimizer slots
    // (the trainer leaves its model to the caller), or a long study grows the heap run by run.
    tf.disposeVariables();
    logger.debug(`tensors left after the run: ${tf.memory().numTensors}`);
  }
}
