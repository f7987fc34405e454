/**
 * The local runner of `tricks ablate` (core/src/ablate) seen from the queue: one run = one RunSpec,
 * trained by runOne() (idempotent: a finished run returns its saved result.json, an interrupted one
 * resumes from OUT/checkpoint), and summarize() writes the study's report. A job runs exactly what a
 * local study runs.
 */
import { runOne } from '../ablate/run.js';
import { summarize } from '../ablate/summary.js';
import type { RunSpec } from '../ablate/plan.js';
import type { UserConfig } from '../plugin/config.js';

export type { RunSpec } from '../ablate/plan.js';
export type { RunRecord } from '../ablate/run.js';
export type { AblationSummary as StudySummary } from '../ablate/summary.js';

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
