import { appendFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { EpochMetrics } from '../hooks/hooks.js';

/** Receives every epoch's metrics. Multi-bound: every sink bound to TOKENS.MetricsSink gets them. */
export interface MetricsSink {
  open(out: string, resumed: boolean): Promise<void>;
  write(metrics: EpochMetrics): Promise<void>;
  close(): Promise<void>;
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
    await appendFile(this.file, `${JSON.stringify(row)}\n`);
  }
  async close(): Promise<void> {}
}
