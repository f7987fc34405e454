/**
 * The local runner of `tricks ablate` (core/src/ablate, issue 9) seen from the queue: one run =
 * one RunSpec, trained by runOne() (idempotent: a finished run returns its saved result.json, an
 * interrupted one resumes from OUT/checkpoint), and summarize() writes the study's report.
 * Imported lazily, so the queue code loads (and its pure parts are testable) on its own.
 */
import type { EpochMetrics } from '../hooks/hooks.js';
import type { Logger } from '../io/logger.js';
import type { UserConfig } from '../plugin/config.js';

export interface RunSpec {
  id: string;
  preset: string;
  ladderStep: number;
  stepName: string;
  trick: string;
  seed: number;
  overrides: UserConfig;
  out: string;
  /** Ids of runs that must finish first (a distillation step waits for its teacher). */
  dependsOn?: string[];
  role?: 'teacher';
}

export interface RunRecord {
  id: string;
  stepName: string;
  trick: string;
  ladderStep: number;
  seed: number;
  top1: number;
  seconds: number;
  epochs: EpochMetrics[];
  resumedFrom?: number;
  role?: 'teacher';
  [extra: string]: unknown;
}

/** The part of summarize()'s answer that the commands print. */
export interface StudySummary {
  steps: { stepName: string; mean: number; std: number; n: number }[];
}

export interface Runner {
  runOne(spec: RunSpec, opts?: { logger?: Logger; handleSignals?: boolean }): Promise<RunRecord>;
  summarize(runs: RunRecord[], out: string, opts?: { title?: string }): Promise<StudySummary>;
}

export async function loadRunner(): Promise<Runner> {
  const mod = (await import('../ablate/run.js' as string)) as Runner;
  return { runOne: mod.runOne, summarize: mod.summarize };
}

/** The user config a spec trains (how runOne builds it), for validation and hashing up front. */
export function specUserConfig(spec: RunSpec): UserConfig {
  return { ...spec.overrides, preset: spec.preset || undefined, seed: spec.seed, out: spec.out, checkpoint: true };
}
