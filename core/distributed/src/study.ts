import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Job, Queue } from 'bullmq';
import { TricksError, writeFileAtomic, type Logger, resolveConfig } from '@tricks/core';
import { configHash, jobIdFor, JOB_FORMAT, JOB_NAME, QUEUE_NAME, type RunJobData, type RunProgress } from './jobs.js';
import { checkRedis } from './redis.js';
import { loadRunner, specUserConfig, type RunRecord, type RunSpec, type StudySummary } from './runner.js';
import { parseQueueUrl, redact, type QueueTarget } from './url.js';

export const STUDY_FILE = 'study.json';
export const QUEUE_REPORT = 'queue.json';

/** OUT/study.json: what the coordinator enqueued, so that a later `--collect` can follow it. */
export interface StudyManifest {
  format: number;
  kind: string;
  /** Redacted. */
  queue: string;
  queueName: string;
  created: string;
  /** Title of the report. */
  title?: string;
  runs: {
    id: string;
    jobId: string;
    out: string;
    stepName: string;
    trick: string;
    ladderStep: number;
    seed: number;
    configHash: string;
    dependsOn?: string[];
    group?: number;
  }[];
}

export interface StudyOptions {
  /** Redis URL (redis:// or rediss://). */
  queue: string;
  /** The study's output directory: on the shared location, the same path on every machine. */
  out: string;
  logger: Logger;
  /** "ablate" or "sweep": a label in study.json. */
  kind?: string;
  /** Retries of a failed run before it is reported as failed. */
  retries?: number;
  /** First retry delay; doubles at each retry. */
  backoffMs?: number;
  /** Follow the study until it is done (default), or return once the jobs are enqueued. */
  wait?: boolean;
  pollMs?: number;
  /** Print a progress line at least this often. */
  reportEveryMs?: number;
  /** Title of ablation.md. */
  title?: string;
  /** Report groups (sweeps: run id -> grid point), in place of the ladder step. */
  groups?: Record<string, number>;
}

export type RunState = 'done' | 'running' | 'waiting' | 'retrying' | 'failed' | 'missing';

export interface RunStatus {
  id: string;
  jobId: string;
  state: RunState;
  attempts: number;
  progress?: RunProgress;
  error?: string;
  /** Wall seconds of the last attempt, for done runs. */
  seconds?: number;
}

export interface StudyReport {
  out: string;
  runs: RunStatus[];
  records: RunRecord[];
  failed: RunStatus[];
  summary?: StudySummary;
}

const msg = (e: unknown) => (e as Error)?.message ?? String(e);

/**
 * Enqueues one BullMQ job per run (deterministic ids: submitting the same study again adds no
 * work), writes OUT/study.json, and, unless `wait` is false, follows the study until every run
 * is done or failed, then writes the same report as a local study (summarize()).
 */
export async function submitStudy(specs: RunSpec[], opts: StudyOptions): Promise<StudyReport | undefined> {
  const target = parseQueueUrl(opts.queue);
  const out = resolve(opts.out);
  const log = (m: string) => opts.logger.info(redact(m, target.secrets));
  if (!specs.length) throw new TricksError('the study has no runs', 'check --seeds and the preset ladder or --grid');
  // Resolve every run here, before any machine trains: a typo fails now, not on a worker in an hour.
  const jobs: { spec: RunSpec; data: RunJobData; jobId: string }[] = [];
  const outOf = new Map(specs.map((s) => [s.id, resolve(s.out)]));
  for (const s of specs) {
    const spec: RunSpec = { ...s, out: resolve(s.out), preset: s.preset.startsWith('.') ? resolve(s.preset) : s.preset };
    const { config } = await resolveConfig(specUserConfig(spec), { ladderStep: spec.ladderStep });
    const hash = configHash(config);
    const after = (spec.dependsOn ?? []).map((id) => {
      const dir = outOf.get(id);
      if (!dir) throw new TricksError(`run ${spec.id} depends on run ${id}, which is not in the study`);
      return { id, out: dir };
    });
    jobs.push({ spec, jobId: jobIdFor(spec, hash), data: { format: JOB_FORMAT, study: out, spec, config, configHash: hash, after } });
  }
  const manifest: StudyManifest = {
    format: 1,
    kind: opts.kind ?? 'ablate',
    queue: target.display,
    queueName: QUEUE_NAME,
    created: new Date().toISOString(),
    ...(opts.title ? { title: opts.title } : {}),
    runs: jobs.map(({ spec, jobId, data }) => ({
      ...(opts.groups?.[spec.id] !== undefined ? { group: opts.groups[spec.id] } : {}),
      id: spec.id,
      jobId,
      out: spec.out,
      stepName: spec.stepName,
      trick: spec.trick,
      ladderStep: spec.ladderStep,
      seed: spec.seed,
      configHash: data.configHash,
      ...(spec.dependsOn?.length ? { dependsOn: spec.dependsOn } : {}),
    })),
  };
  await checkRedis(target, (m) => opts.logger.warn(m));
  const queue = new Queue<RunJobData, RunRecord>(QUEUE_NAME, {
    connection: { ...target.connection, connectionName: 'tricks-coordinator' },
  });
  queue.on('error', (e) => opts.logger.warn(redact(msg(e), target.secrets)));
  try {
    await writeFileAtomic(join(out, STUDY_FILE), JSON.stringify(manifest, null, 1));
    let added = 0,
      already = 0,
      retried = 0,
      finished = 0;
    const attempts = (opts.retries ?? 2) + 1;
    for (const { spec, jobId, data } of jobs) {
      if (existsSync(join(spec.out, 'result.json'))) {
        finished++;
        continue;
      }
      const existing = await queue.getJob(jobId);
      if (existing) {
        const state = await existing.getState();
        if (state === 'failed') {
          await existing.retry('failed');
          retried++;
          added++;
          continue;
        }
        if (state !== 'completed') {
          already++;
          continue;
        }
        // Completed, yet its result is not on the shared location (deleted, or written where the
        // coordinator cannot see it): train it again.
        await existing.remove();
        retried++;
      }
      await queue.add(JOB_NAME, data, {
        jobId,
        attempts,
        backoff: { type: 'exponential', delay: opts.backoffMs ?? 10_000 },
        removeOnComplete: false,
        removeOnFail: false,
      });
      added++;
    }
    log(
      `queue ${target.display}: ${added} run(s) enqueued${retried ? ` (${retried} again, after a failure or a lost result)` : ''}, ` +
        `${already} already queued, ${finished} already finished (study ${out}, ${jobs.length} runs)`,
    );
    if (opts.wait === false) {
      log(`follow it with: tricks ${manifest.kind} --collect --queue ${target.display} --out ${out}`);
      return undefined;
    }
    return await follow(queue, manifest, out, target, opts);
  } finally {
    await queue.close();
  }
}

/** `--collect`: follows a study enqueued earlier (OUT/study.json) and writes its report once done. */
export async function collectStudy(opts: StudyOptions): Promise<StudyReport> {
  const target = parseQueueUrl(opts.queue);
  const out = resolve(opts.out);
  const file = join(out, STUDY_FILE);
  if (!existsSync(file))
    throw new TricksError(`--collect: ${file} does not exist`, 'give the --out directory of a study enqueued with --queue');
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as StudyManifest;
  await checkRedis(target, (m) => opts.logger.warn(m));
  const queue = new Queue<RunJobData, RunRecord>(manifest.queueName ?? QUEUE_NAME, {
    connection: { ...target.connection, connectionName: 'tricks-collect' },
  });
  queue.on('error', (e) => opts.logger.warn(redact(msg(e), target.secrets)));
  try {
    return await follow(queue, manifest, out, target, opts);
  } finally {
    await queue.close();
  }
}

/** The state of every run: the result file on the shared location first, then the job in Redis. */
async function poll(queue: Queue<RunJobData, RunRecord>, manifest: StudyManifest, target: QueueTarget): Promise<RunStatus[]> {
  const runs = await pollJobs(queue, manifest, target);
  // A run whose dependency failed for good can never start: report it failed and take its job off the queue.
  const byId = new Map(runs.map((r) => [r.id, r]));
  for (const m of manifest.runs) {
    const r = byId.get(m.id)!;
    const dead = (m.dependsOn ?? []).filter((d) => byId.get(d)?.state === 'failed');
    if (!dead.length || r.state === 'done' || r.state === 'failed' || r.state === 'running') continue;
    r.state = 'failed';
    r.error = `depends on ${dead.join(', ')}, which failed`;
    await (await Job.fromId(queue, m.jobId))?.remove().catch(() => {});
  }
  return runs;
}

async function pollJobs(queue: Queue<RunJobData, RunRecord>, manifest: StudyManifest, target: QueueTarget): Promise<RunStatus[]> {
  return Promise.all(
    manifest.runs.map(async (r): Promise<RunStatus> => {
      const job = await Job.fromId<RunJobData, RunRecord>(queue, r.jobId);
      const hasResult = existsSync(join(r.out, 'result.json'));
      const base = { id: r.id, jobId: r.jobId, attempts: job?.attemptsMade ?? 0 };
      if (!job) return { ...base, state: hasResult ? 'done' : 'missing' };
      const state = await job.getState();
      const progress = typeof job.progress === 'object' ? (job.progress as unknown as RunProgress) : undefined;
      const error = job.failedReason ? redact(job.failedReason, target.secrets) : undefined;
      if (state === 'completed') {
        // A worker's result counts once it is on the shared location (written atomically by runOne).
        if (!hasResult)
          return {
            ...base,
            state: 'failed',
            error: `job completed, but ${join(r.out, 'result.json')} is missing: is the study's --out on storage that every machine mounts at the same path?`,
          };
        return {
          ...base,
          state: 'done',
          seconds: job.finishedOn && job.processedOn ? (job.finishedOn - job.processedOn) / 1000 : undefined,
        };
      }
      if (state === 'failed') return { ...base, state: 'failed', error };
      if (state === 'active') return { ...base, state: 'running', progress, error };
      if (state === 'delayed' && job.attemptsMade > 0) return { ...base, state: 'retrying', error, progress };
      return { ...base, state: 'waiting', progress, error };
    }),
  );
}

const fmtSeconds = (s: number) =>
  s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min` : s >= 90 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`;

/** Estimated seconds left: mean run time so far times the work left, over the runs going on in parallel. */
export function eta(runs: RunStatus[], elapsedByRun: Map<string, number>): number | undefined {
  const done = runs.filter((r) => r.state === 'done' && r.seconds !== undefined).map((r) => r.seconds!);
  const running = runs.filter((r) => r.state === 'running');
  const frac = (r: RunStatus) => (r.progress && r.progress.epochs ? Math.min(1, r.progress.epoch / r.progress.epochs) : 0);
  let per: number | undefined = done.length ? done.reduce((a, b) => a + b, 0) / done.length : undefined;
  if (per === undefined) {
    const est = running.filter((r) => frac(r) > 0 && elapsedByRun.has(r.id)).map((r) => elapsedByRun.get(r.id)! / frac(r));
    if (est.length) per = est.reduce((a, b) => a + b, 0) / est.length;
  }
  if (per === undefined) return undefined;
  const left = runs.filter((r) => r.state === 'waiting' || r.state === 'retrying').length + running.reduce((n, r) => n + 1 - frac(r), 0);
  return (per * left) / Math.max(1, running.length);
}

export function progressLine(runs: RunStatus[], etaSeconds: number | undefined): string {
  const n = (s: RunState) => runs.filter((r) => r.state === s).length;
  const parts = [`${n('done')}/${runs.length} done`, `${n('running')} running`, `${n('waiting')} waiting`];
  if (n('retrying')) parts.push(`${n('retrying')} retrying`);
  parts.push(`${n('failed')} failed`);
  if (n('missing')) parts.push(`${n('missing')} missing from the queue`);
  const running = runs
    .filter((r) => r.state === 'running')
    .map((r) => `${r.id}${r.progress ? ` epoch ${r.progress.epoch}/${r.progress.epochs} on ${r.progress.worker}` : ''}`);
  const left = runs.some((r) => r.state !== 'done' && r.state !== 'failed');
  return `queue: ${parts.join(', ')}${left && etaSeconds !== undefined ? `; ETA ${fmtSeconds(etaSeconds)}` : ''}${running.length ? ` [${running.join('; ')}]` : ''}`;
}

async function follow(
  queue: Queue<RunJobData, RunRecord>,
  manifest: StudyManifest,
  out: string,
  target: QueueTarget,
  opts: StudyOptions,
): Promise<StudyReport> {
  const log = (m: string) => opts.logger.info(redact(m, target.secrets));
  const pollMs = opts.pollMs ?? 2000;
  const every = opts.reportEveryMs ?? 30_000;
  const startedAt = new Map<string, number>();
  let last = '',
    lastAt = 0;
  const reported = new Set<string>();
  let runs: RunStatus[];
  for (;;) {
    runs = await poll(queue, manifest, target);
    const now = Date.now();
    for (const r of runs) if (r.state === 'running' && !startedAt.has(r.id)) startedAt.set(r.id, now);
    const elapsed = new Map([...startedAt].map(([id, t]) => [id, (now - t) / 1000]));
    const line = progressLine(runs, eta(runs, elapsed));
    const key = runs.map((r) => `${r.state}${r.progress?.epoch ?? ''}`).join();
    if (key !== last || now - lastAt >= every) {
      log(line);
      last = key;
      lastAt = now;
    }
    for (const r of runs) {
      if (r.state !== 'done' && r.attempts > 0 && r.error && !reported.has(`${r.id}:${r.attempts}`)) {
        reported.add(`${r.id}:${r.attempts}`);
        opts.logger.warn(
          `run ${r.id} ${r.state === 'failed' ? `failed after ${r.attempts} attempt(s)` : `failed (attempt ${r.attempts}), retrying with backoff`}: ${r.error}`,
        );
      }
    }
    if (runs.every((r) => r.state === 'done' || r.state === 'failed' || r.state === 'missing') && runs.some((r) => r.state !== 'missing'))
      break;
    if (runs.every((r) => r.state === 'missing')) {
      throw new TricksError(
        `none of the ${runs.length} jobs of ${out} is on the queue ${target.display}`,
        'submit the study again (the same command without --collect); finished runs are not trained again',
      );
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  const records: RunRecord[] = [];
  for (const r of runs) {
    if (r.state !== 'done') continue;
    const run = manifest.runs.find((m) => m.id === r.id)!;
    const rec = JSON.parse(readFileSync(join(run.out, 'result.json'), 'utf8')) as RunRecord;
    records.push(run.group !== undefined ? { ...rec, ladderStep: run.group } : rec);
  }
  const failed = runs.filter((r) => r.state !== 'done');
  await writeFileAtomic(
    join(out, QUEUE_REPORT),
    redact(
      JSON.stringify({ queue: target.display, queueName: manifest.queueName, finished: new Date().toISOString(), runs }, null, 1),
      target.secrets,
    ),
  );
  let summary: StudySummary | undefined;
  if (records.length) {
    const runner = await loadRunner();
    summary = await runner.summarize(records, out, { title: manifest.title });
    log(`study ${out}: ${records.length}/${runs.length} runs done; report in ${join(out, 'ablation.md')}`);
  }
  if (failed.length) {
    throw new TricksError(
      `${failed.length} of ${runs.length} runs did not finish: ${failed.map((f) => `${f.id} (${f.state}${f.error ? `: ${f.error.split('\n')[0]}` : ''})`).join('; ')}`,
      `fix the cause and submit the same study again: finished runs are kept, failed ones are retried (details in ${join(out, QUEUE_REPORT)})`,
    );
  }
  return { out, runs, records, failed, summary };
}
