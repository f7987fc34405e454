import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ContainerModule } from 'inversify';
import {
  definePlugin,
  METRIC_KEYS,
  TOKENS,
  TricksError,
  writeError,
  writeFileAtomic,
  type EpochMetrics,
  type MetricsSink,
} from '@tricks/core';

export const PLUGIN_NAME = 'csv-logger';

export interface CsvLoggerOptions {
  /** File name, relative to the run's output folder. */
  file: string;
  /** Column separator. */
  separator: string;
  /** Keep the rows of an existing file (a new run otherwise starts it afresh; a resumed run always appends). */
  append: boolean;
}

const cell = (v: unknown, sep: string) => {
  const s = v === undefined || v === null ? '' : typeof v === 'number' ? String(v) : String(v);
  return s.includes(sep) || s.includes('"') || s.includes('\n') ? `"${s.replace(/"/g, '""')}"` : s;
};

/**
 * OUT/metrics.csv, one row per epoch (Keras's CSVLogger): the standard columns (METRIC_KEYS) first, then
 * every other number the epoch's metrics carry (other plugins' metrics), in the order first seen. Each row
 * is one appendFile of one line, so a reader never sees half a row. A resumed run keeps the file's header,
 * and its first row replaces the rows of the epochs it re-runs (a kill after a row, before its checkpoint).
 */
export class CsvMetricsSink implements MetricsSink {
  private path = '';
  private columns: string[] | undefined;
  private resumed = false;

  constructor(private readonly o: CsvLoggerOptions) {}

  async open(out: string, resumed: boolean): Promise<void> {
    this.path = join(out, this.o.file);
    await mkdir(dirname(this.path), { recursive: true });
    this.columns = undefined;
    this.resumed = resumed;
    if (existsSync(this.path) && (resumed || this.o.append)) {
      const header = (await readFile(this.path, 'utf8')).split('\n')[0];
      if (header) this.columns = header.split(this.o.separator);
    } else if (existsSync(this.path)) {
      await writeFile(this.path, '');
    }
  }

  async write(m: EpochMetrics): Promise<void> {
    // Node's ENOSPC names no file: the error carries this one's path for the CLI's message.
    const append = (line: string) => appendFile(this.path, `${line}\n`).catch((e) => Promise.reject(writeError(e, this.path)));
    if (this.resumed && this.columns) {
      this.resumed = false;
      const [header, ...rows] = (await readFile(this.path, 'utf8')).split('\n').filter(Boolean);
      const at = this.columns.indexOf('epoch');
      const keep = rows.filter((r) => Number(r.split(this.o.separator)[at]) < m.epoch);
      if (keep.length < rows.length) await writeFileAtomic(this.path, [header, ...keep].map((l) => `${l}\n`).join(''));
    }
    if (!this.columns) {
      const extra = Object.keys(m).filter((k) => !(METRIC_KEYS as readonly string[]).includes(k));
      this.columns = [...METRIC_KEYS, ...extra];
      await append(this.columns.join(this.o.separator));
    }
    await append(this.columns.map((k) => cell(m[k], this.o.separator)).join(this.o.separator));
  }

  async close(): Promise<void> {}
}

export default definePlugin<CsvLoggerOptions>({
  name: PLUGIN_NAME,
  description: "writes every epoch's metrics to OUT/metrics.csv (Keras CSVLogger), as a metrics sink bound through DI",
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      file: { type: 'string', minLength: 1, default: 'metrics.csv' },
      separator: { type: 'string', minLength: 1, maxLength: 1, default: ',' },
      append: { type: 'boolean', default: false },
    },
  },
  apply(_api, o) {
    if (o.file.includes('..')) {
      throw new TricksError(
        `option "plugins.csv-logger.file": "${o.file}" leaves the run's folder`,
        'give a file name inside the output folder, e.g. metrics.csv',
      );
    }
  },
  modules: (o) => [
    new ContainerModule(({ bind }) => {
      bind<MetricsSink>(TOKENS.MetricsSink).toConstantValue(new CsvMetricsSink(o));
    }),
  ],
});
