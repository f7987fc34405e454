import { appendFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TricksError } from '../hooks/errors.js';
import type { EpochMetrics } from '../hooks/hooks.js';
import { writeError } from '../io/atomic.js';

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

/** OUT/metrics.jsonl: one line per epoch with exactly METRIC_KEYS. */
export class JsonlMetricsSink implements MetricsSink {
  private file = '';
  async open(out: string): Promise<void> {
    this.file = join(out, 'metrics.jsonl');
    await mkdir(dirname(this.file), { recursive: true });
  }
  async write(m: EpochMetrics): Promise<void> {
    const row: Record<string, number> = {};
    for (const k of METRIC_KEYS) row[k] = m[k];
    // One appendFile of one line: a reader never sees a partial row.
    await appendFile(this.file, `${JSON.stringify(row)}\n`).catch((e) => Promise.reject(writeError(e, this.file)));
  }
  async close(): Promise<void> {}
}
