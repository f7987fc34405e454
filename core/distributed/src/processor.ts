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
import { completeDir, type Logger, resolveConfig } from '@tricks/core';
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
  const dir = completeDir(join(out, 'checkpoint'));
  if (!dir) return 0;
  try {
    return Number((JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { epoch?: number }).epoch ?? 0);
  } catch {
    return 0;
  }
}

export default async function processRun(
  job: SandboxedJob<RunJobData, RunRecord>,
  token?: string,
  signal?: AbortSignal,
): Promise<RunRecord> {
  const { spec } = job.data;
  const backend = process.env.TRICKS_WORKER_BACKEND;
  if (backend) spec.overrides = { ...spec.overrides, backend };
  const base = { job: String(job.id), attempt: (job.attemptsMade ?? 0) + 1, worker: workerName(), pid: process.pid };
  const log = (e: Omit<AttemptEvent, keyof typeof base | 'time'>) =>
    appendAttempt(spec.out, { ...e, ...base, time: new Date().toISOString() });

  // Every machine must train what the coordinator resolved: a different plugin version or preset
  // here would make the study compare apples with pears.
  const here = await resolveConfig(specUserConfig(spec), { ladderStep: spec.ladderStep });
  const diff = diffConfigs(job.data.config, here.config);
  if (diff.length) {
    throw new Error(
      `worker ${base.worker} resolves run ${spec.id} differently from the coordinator (${diff.join('; ')}): install the same versions of tricks and its plugins on every machine`,
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
  void job
    .updateProgress({ epoch: fromEpoch, epochs: here.config.epochs, worker: base.worker, ...(fromEpoch ? { resumedFrom: fromEpoch } : {}) })
    .catch(() => {});

  signal?.addEventListener('abort', () => {
    if (String(signal.reason) === 'shutdown') {
      // Graceful stop of the worker: the trainer finishes its step, checkpoints and throws Interrupted.
      process.kill(process.pid, 'SIGTERM');
    } else {
      // The job's lock is lost: another worker may hold the job now. Leave without writing anything.
      log({ event: 'abandoned', error: String(signal.reason) });
      process.exit(75);
    }
  });

  const runner = await loadRunner();
  const logger = new JobLogger(spec.id, (p) => void job.updateProgress(p as unknown as object).catch(() => {}));
  try {
    const record = await runner.runOne(spec, { logger, handleSignals: true });
    log({ event: reused ? 'result-reused' : 'result-written', resumedFrom: record.resumedFrom, top1: record.top1 });
    return record;
  } catch (e) {
    const err = e as Error;
    if (err?.name === 'Interrupted') {
      log({ event: 'interrupted' });
      // Back to the queue without using up an attempt; the next worker resumes from the checkpoint.
      await job.moveToWait(token);
      const w = new Error(`run ${spec.id} interrupted by a worker shutdown; back in the queue`);
      w.name = 'WaitingError';
      throw w;
    }
    log({ event: 'error', error: String(err?.message ?? err).slice(0, 2000) });
    throw e;
  } finally {
    // This process trains job after job: free the finished run's weights and optimizer slots
    // (the trainer leaves its model to the caller), or a long study grows the heap run by run.
    tf.disposeVariables();
    logger.debug(`tensors left after the run: ${tf.memory().numTensors}`);
  }
}
