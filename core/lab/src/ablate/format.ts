// The ablation's summary types and how its numbers are written (ablation.md and ablation.html share them).
import type { RunRecord } from './run.js';

export interface StepSummary {
  ladderStep: number;
  stepName: string;
  trick: string;
  /** Seeds that finished. */
  n: number;
  seeds: number[];
  top1: number[];
  mean: number;
  /** Sample standard deviation (n - 1); 0 for one seed. */
  std: number;
  /** Mean minus the previous rung's mean; undefined for the first rung. */
  delta?: number;
  /** Standard error of that difference, sqrt(s1^2/n1 + s0^2/n0) (0 when either rung has one seed). */
  deltaSe?: number;
  /** Mean seconds of training + evaluation per run. */
  seconds: number;
  imagesPerSec: number;
}

export interface AblationSummary {
  steps: StepSummary[];
  teacher?: { id: string; trick: string; top1: number; seconds: number };
  runs: Omit<RunRecord, 'epochs'>[];
  backend?: string;
}

export const pct = (x: number, digits = 2) => (x * 100).toFixed(digits);
export const signed = (x: number, digits = 2) => `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(digits)}`;
export const duration = (s: number) =>
  s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 90 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(0)} s`;

/** A verdict on a difference, from its standard error: honest about noise. */
export function verdict(s: StepSummary): string {
  if (s.delta === undefined) return '';
  if (!s.deltaSe) return s.n > 1 ? '' : 'one seed: no error estimate';
  const z = s.delta / s.deltaSe;
  if (Math.abs(z) < 2) return 'within noise (|Δ| < 2 SE)';
  return z > 0 ? 'helps (Δ > 2 SE)' : 'hurts (Δ < −2 SE)';
}
