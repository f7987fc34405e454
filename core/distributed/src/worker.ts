import { hostname } from 'node:os';
import { Worker, type Job } from 'bullmq';
import { threadsPerJob } from '@tricks/backend-wasm';
import type { Logger } from '@tricks/core';
import { checkRedis } from './redis.js';
import { QUEUE_NAME, type RunJobData, type RunProgress } from './jobs.js';
import type { RunRecord } from './runner.js';
import { parseQueueUrl, redact } from './url.js';

export interface WorkerOptions {
  queue: string;
  /** Jobs trained at once on this machine (one child process each). */
  concurrency?: number;
  /** Backend for every run this worker trains (the machine's: wasm, cpu, tensorflow...). */
  backend?: string;
  /** How long a job's lock lives without renewal; a dead worker's job is handed out again after it. */
  lockDurationMs?: number;
  /** How often this worker looks for stalled jobs (of any worker). */
  stalledIntervalMs?: number;
  /** A job that stalls more often than this fails for good. */
  maxStalledCount?: number;
  logger: Logger;
}

export interface RunningWorker {
  worker: Worker<RunJobData, RunRecord>;
  name: string;
  /** Graceful stop: running trainings checkpoint and go back to the queue, then the worker closes. */
  stop(): Promise<void>;
}

/**
 * A BullMQ worker whose processor is sandboxed: every job trains in a child process (see
 * processor.ts), so this process's event loop is free to renew job locks while a synchronous
 * training step runs.
 */
export async function startWorker(opts: WorkerOptions): Promise<RunningWorker> {
  const target = parseQueueUrl(opts.queue);
  const say = (m: string) => opts.logger.info(redact(m, target.secrets));
  const warn = (m: string) => opts.logger.warn(redact(m, target.secrets));
  await checkRedis(target, warn);
  const name = `${hostname()}:${process.pid}`;
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.TRICKS_REDIS_PASSWORD;
  if (opts.backend) env.TRICKS_WORKER_BACKEND = opts.backend;
  const concurrency = opts.concurrency ?? 1;
  env.TRICKS_WASM_THREADS = threadsPerJob(concurrency); // the cores shared between the jobs at once
  const worker = new Worker<RunJobData, RunRecord>(QUEUE_NAME, new URL('./processor.js', import.meta.url), {
    connection: { ...target.connection, connectionName: `tricks-worker:${name}` },
    concurrency,
    useWorkerThreads: false,
    workerForkOptions: { env },
    lockDuration: opts.lockDurationMs ?? 30_000,
    stalledInterval: opts.stalledIntervalMs ?? 30_000,
    maxStalledCount: opts.maxStalledCount ?? 3,
    name,
    autorun: true,
  });
  const label = (job: Job<RunJobData> | undefined) =>
    job ? `${job.data?.spec?.id ?? job.id} (job ${job.id}, attempt ${job.attemptsMade + 1})` : '(unknown job)';
  worker.on('active', (job) => say(`worker ${name}: training ${label(job)} -> ${job.data.spec.out}`));
  worker.on('completed', (job, r) =>
    say(
      `worker ${name}: finished ${job.data.spec.id}: top-1 ${r?.top1?.toFixed?.(4) ?? '?'}${r?.resumedFrom ? ` (resumed from epoch ${r.resumedFrom})` : ''}`,
    ),
  );
  worker.on('failed', (job, err) => warn(`worker ${name}: ${label(job)} failed: ${err.message}`));
  worker.on('stalled', (id) =>
    warn(
      `worker ${name}: job ${id} stalled (its worker stopped renewing its lock); it goes back to the queue and resumes from its checkpoint`,
    ),
  );
  worker.on('error', (err) => warn(`worker ${name}: ${err.message}`));
  // Our lock on a job is gone (this machine lost Redis for longer than the lock duration, say):
  // another worker may already train it, so this one must stop and write nothing.
  worker.on('lockRenewalFailed', (ids: string[]) => {
    for (const id of ids) {
      warn(`worker ${name}: lost the lock of job ${id}; abandoning it`);
      worker.cancelJob(id, 'lock-lost');
    }
  });
  // The training process of each job, from its progress reports. BullMQ's cancel message does not reach a job
  // whose process was still starting when the stop began: such a process, first heard of after it, gets a SIGTERM.
  let stopRequested = false;
  const known = new Set<number>();
  worker.on('progress', (job, p) => {
    const pid = (p as RunProgress | undefined)?.pid;
    if (!pid || known.has(pid)) return;
    known.add(pid);
    if (stopRequested) {
      say(`worker ${name}: stopping ${label(job)}, which started as the worker stopped (pid ${pid})`);
      process.kill(pid, 'SIGTERM');
    }
  });
  await worker.waitUntilReady();
  say(
    `worker ${name}: waiting for jobs on ${target.display} (queue ${QUEUE_NAME}), concurrency ${concurrency}${opts.backend ? `, backend ${opts.backend}` : ''}`,
  );
  let stopping: Promise<void> | undefined;
  return {
    worker,
    name,
    stop: () =>
      (stopping ??= (async () => {
        say(`worker ${name}: stopping; running jobs checkpoint and go back to the queue`);
        stopRequested = true;
        worker.cancelAllJobs('shutdown');
        await worker.close();
      })()),
  };
}
