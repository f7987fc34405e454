/**
 * The local runner of `tricks ablate` (core/lab/src/ablate) seen from the queue: one run = one RunSpec,
 * trained by runOne() (idempotent: a finished run returns its saved result.json, an interrupted one
 * resumes from OUT/checkpoint), and summarize() writes the study's report. A job runs exactly what a
 * local study runs.
 */
import { runOne, summarize, type RunSpec } from '@tricks/lab';
import type { UserConfig } from '@tricks/core';

export type { RunSpec } from '@tricks/lab';
export type { RunRecord } from '@tricks/lab';
export type { AblationSummary as StudySummary } from '@tricks/lab';

export interface Runner {
  runOne: typeof runOne;
  summarize: typeof summarize;
}

export async function loadRunner(): Promise<Runner> {
  return { runOne, summarize };
}

/** The user config a spec trains, as runOne builds it: for validation and hashing up front. */
export function specUserConfig(spec: RunSpec): UserConfig {
  return { ...spec.overrides, preset: spec.preset || undefined, seed: spec.seed, out: spec.out, checkpoint: true };
}
