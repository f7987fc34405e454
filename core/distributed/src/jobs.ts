import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ResolvedConfig } from '@tricks/core';
import type { RunSpec } from './runner.js';

/** One BullMQ queue for every study; a study's jobs are told apart by their ids. */
export const QUEUE_NAME = 'tricks-runs';
export const JOB_NAME = 'run';
export const JOB_FORMAT = 1;

/** What a job carries: the run (preset, ladder step, seed, overrides, output location) and its resolved config. */
export interface RunJobData {
  format: number;
  /** The study's output directory on the shared location. */
  study: string;
  spec: RunSpec;
  /** The config as the coordinator resolved it (out, backend aside, the worker must resolve the same). */
  config: ResolvedConfig;
  configHash: string;
  /** Runs that must have written their result first (a distillation run's teacher). */
  after: { id: string; out: string }[];
}

/** Progress a worker reports for its job (job.updateProgress). */
export interface RunProgress {
  epoch: number;
  epochs: number;
  worker: string;
  resumedFrom?: number;
  /** The process that trains the job (the worker stops it on shutdown). */
  pid?: number;
}

/** The config without what may legitimately differ between machines: the output path and the backend. */
export function portableConfig(c: ResolvedConfig): Omit<ResolvedConfig, 'out' | 'backend'> {
  const { out: _o, backend: _b, ...rest } = c;
  return rest;
}

export const configHash = (c: ResolvedConfig) =>
  createHash('sha256')
    .update(JSON.stringify(portableConfig(c)))
    .digest('hex')
    .slice(0, 16);

/**
 * Deterministic job id: the run id plus a hash of where it writes and what it trains. The same
 * study submitted twice gives the same ids, and BullMQ adds nothing for an id it already holds.
 * (BullMQ reserves ":" in custom ids, and an all-digits id could clash with its own counters.)
 */
export function jobIdFor(spec: RunSpec, hash: string): string {
  const h = createHash('sha256').update(`${spec.out}\n${hash}`).digest('hex').slice(0, 16);
  return `${spec.id.replace(/[^A-Za-z0-9_.+-]/g, '_')}-${h}`;
}

/** Paths where two resolved configs differ (out and backend ignored), at most `max` of them. */
export function diffConfigs(a: unknown, b: unknown, max = 5, path = ''): string[] {
  const out: string[] = [];
  const walk = (x: unknown, y: unknown, p: string) => {
    if (out.length >= max) return;
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null || Array.isArray(x) !== Array.isArray(y)) {
      if (JSON.stringify(x) !== JSON.stringify(y)) out.push(`${p || '(root)'}: ${JSON.stringify(x)} vs ${JSON.stringify(y)}`);
      return;
    }
    const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
    for (const k of keys) {
      if (!p && (k === 'out' || k === 'backend')) continue;
      walk((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], Array.isArray(x) ? `${p}[${k}]` : p ? `${p}.${k}` : k);
    }
  };
  walk(a, b, path);
  return out;
}

/**
 * OUT/<run>/attempts.jsonl: one line per event of every attempt at the run (start, result-written,
 * result-reused, interrupted, abandoned, error), appended with O_APPEND so lines from two
 * machines never interleave mid-line. It is the audit trail that shows a run resumed, and that
 * its result was written once.
 */
export interface AttemptEvent {
  event: 'start' | 'result-written' | 'result-reused' | 'interrupted' | 'abandoned' | 'error';
  job: string;
  attempt: number;
  worker: string;
  pid: number;
  time: string;
  /** start: the epoch of the checkpoint found on the shared location (0 = none). */
  checkpointEpoch?: number;
  resumedFrom?: number;
  top1?: number;
  error?: string;
}

export const ATTEMPTS_FILE = 'attempts.jsonl';

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}

/** Synchronous on purpose: it is also called right before process.exit. */
export function appendAttempt(runDir: string, e: AttemptEvent): void {
  appendFileSync(join(runDir, ATTEMPTS_FILE), `${JSON.stringify(e)}\n`);
}

export function readAttempts(runDir: string): AttemptEvent[] {
  const f = join(runDir, ATTEMPTS_FILE);
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AttemptEvent);
}
