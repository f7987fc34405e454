import { resolve } from 'node:path';
import type { Command } from 'commander';
import { TricksError, ConsoleLogger, type Logger } from '@tricks/core';
import { loadLadder, planAblation } from '@tricks/lab';
import { configFromFlags, type TrainFlags } from './train.js';
import { int } from './flags.js';
import { type RunSpec, collectStudy, submitStudy, type StudyReport } from '@tricks/distributed';

/** The flags that send a study to a queue (ablate and sweep share them). */
export interface QueueFlags {
  queue?: string;
  collect?: boolean;
  wait?: boolean;
  retries?: number;
  backoff?: number;
  out?: string;
}

/** Adds --queue, --collect, --no-wait and --retries to a study command. */
export function addQueueOptions(cmd: Command, { collect = true } = {}): Command {
  cmd
    .option(
      '--queue <url>',
      'run on machines that run `tricks worker`: enqueue one job per run on this Redis (redis://[:PASSWORD@]HOST:PORT[/DB], rediss:// for TLS); without it, run here',
    )
    .option('--no-wait', 'with --queue: enqueue and return instead of following the study (follow later with --collect)')
    .option(
      '--retries <n>',
      'with --queue: retries of a failed run (exponential backoff) before it counts as failed',
      int('--retries', 0),
      2,
    )
    .option(
      '--backoff <ms>',
      'with --queue: delay before the first retry of a failed run; doubles at each retry',
      int('--backoff', 0),
      10000,
    );
  if (collect)
    cmd.option(
      '--collect',
      'with --queue: follow a study enqueued before (OUT/study.json), show its progress and write its report when it is done',
    );
  return cmd;
}

/**
 * `tricks ablate` is registered by core/cli/src/ablate.ts (before this file's commands): give it the
 * queue options here, so that its action only needs a one-line hook calling ablateOnQueue().
 */
export function extendAblateCommand(program: Command): void {
  const ablate = program.commands.find((c) => c.name() === 'ablate');
  if (ablate && !ablate.options.some((o) => o.long === '--queue')) addQueueOptions(ablate);
}

/** Prints what a local study prints: one JSON line with the out dir and each step's mean. */
export function printStudy(report: StudyReport | undefined): void {
  if (!report) return;
  process.stdout.write(
    `${JSON.stringify({
      out: report.out,
      steps: (report.summary?.steps ?? []).map((s) => ({ step: s.stepName, top1: s.mean, std: s.std, n: s.n })),
      failed: report.failed.map((f) => f.id),
    })}\n`,
  );
}

/** Runs a planned study on the queue (or follows it with --collect) and prints its summary. */
export async function runStudyFromFlags(
  f: QueueFlags,
  plan: () => Promise<RunSpec[]>,
  extra: { kind: string; title?: string; groups?: Record<string, number>; logger?: Logger },
): Promise<void> {
  if (!f.queue) throw new TricksError(`${f.collect ? '--collect' : 'this'} needs --queue URL`);
  if (!f.out) throw new TricksError('--queue needs --out DIR: a directory on storage that every machine mounts at the same path');
  const logger = extra.logger ?? new ConsoleLogger(Boolean(process.env.TRICKS_VERBOSE));
  const opts = {
    queue: f.queue,
    out: resolve(f.out),
    logger,
    kind: extra.kind,
    retries: f.retries,
    backoffMs: f.backoff,
    wait: f.wait,
    title: extra.title,
    groups: extra.groups,
  };
  printStudy(f.collect ? await collectStudy(opts) : await submitStudy(await plan(), opts));
}

/** The hook of `tricks ablate --queue URL` (called from core/cli/src/ablate.ts). */
export async function ablateOnQueue(f: QueueFlags & TrainFlags & { seeds: number; teacher?: string }): Promise<void> {
  const overrides = await configFromFlags({ ...f, out: undefined });
  const preset = overrides.preset;
  delete overrides.preset;
  delete overrides.out;
  let title: string | undefined;
  if (!f.collect) {
    if (!preset) throw new TricksError('tricks ablate needs a preset with a ladder', 'add --preset NAME, or "preset" in the config file');
    title = `Ablation: ${(await loadLadder(preset)).definition.name}`;
  }
  await runStudyFromFlags(f, () => planAblation({ preset: preset!, seeds: f.seeds, overrides, out: resolve(f.out!), teacher: f.teacher }), {
    kind: 'ablate',
    title,
  });
}
