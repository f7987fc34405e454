import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TricksError } from '../hooks/errors.js';
import type { EpochMetrics } from '../hooks/hooks.js';
import { writeError, writeFileAtomic } from '../io/atomic.js';

/** Receives every epoch's metrics. Multi-bound: every sink bound to TOKENS.MetricsSink gets them. */
export interface MetricsSink {
  open(out: string, resumed: boolean): Promise<void>;
  write(metrics: EpochMetrics): Promise<void>;
  close(): Promise<void>;
}

/**
 * The value a plugin option such as `monitor` names in an epoch's metrics (best-checkpoint, early-stopping,
 * reduce-on-plateau). A name the metrics do not have is a TricksError naming the option and listing the keys.
 */
export function monitoredMetric(metrics: EpochMetrics, key: string, plugin: string, option = 'monitor'): number {
  const v = (metrics as Record<string, unknown>)[key];
  if (typeof v === 'number') return v;
  const keys = Object.keys(metrics).filter((k) => typeof (metrics as Record<string, unknown>)[k] === 'number');
  throw new TricksError(
    `${plugin}: option plugins.${plugin}.${option} is "${key}", which the epoch metrics do not have`,
    `available: ${keys.join(', ')}`,
  );
}

export const METRIC_KEYS = ['epoch', 'train_loss', 'val_loss', 'val_top1', 'val_top5', 'lr', 'images_per_sec', 'seconds'] as const;

/** The epoch of a metrics.jsonl line; Infinity for a line a crash cut short. */
function epochOf(line: string): number {
  try {
    return (JSON.parse(line) as EpochMetrics).epoch;
  } catch {
    return Infinity;
  }
}

/** OUT/metrics.jsonl: one line per epoch with exactly METRIC_KEYS. */
export class JsonlMetricsSink implements MetricsSink {
  private file = '';
  private first = true;
  async open(out: string): Promise<void> {
    this.file = join(out, 'metrics.jsonl');
    await mkdir(dirname(this.file), { recursive: true });
  }
  async write(m: EpochMetrics): Promise<void> {
    const row: Record<string, number> = {};
    for (const k of METRIC_KEYS) row[k] = m[k];
    // A resumed run re-runs the epochs after its checkpoint: its first row replaces the rows of those epochs
    // (a kill after a row was written, before the checkpoint that covers it).
    const rows = this.first ? (await readFile(this.file, 'utf8').catch(() => '')).split('\n').filter(Boolean) : [];
    const keep = rows.filter((l) => epochOf(l) < m.epoch);
    if (keep.length < rows.length) await writeFileAtomic(this.file, keep.map((l) => `${l}\n`).join(''));
    this.first = false;
    // One appendFile of one line: a reader never sees a partial row.
    await appendFile(this.file, `${JSON.stringify(row)}\n`).catch((e) => Promise.reject(writeError(e, this.file)));
  }
  async close(): Promise<void> {}
}
