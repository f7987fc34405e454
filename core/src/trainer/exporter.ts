import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Artifact } from '../hooks/hooks.js';
import type { TrainContext } from './context.js';
import { calibrationBatches, exportRun } from '../export/service.js';
import { writeDirAtomic } from '../io/atomic.js';
import { saveModel } from '../io/model-files.js';

/** Writes the trained model. A service: the export hook then turns this artifact into others. */
export interface Exporter {
  export(model: LayersModel, dir: string, metadata: Record<string, unknown>): Promise<Artifact>;
  /** The last export tap: writes config.export.formats from the final artifact and verifies each (optional). */
  finish?(artifact: Artifact, ctx: TrainContext): Promise<Artifact>;
}

/** tfjs LayersModel (model.json + weights.bin), loadable with plain tf.loadLayersModel. */
export class TfjsExporter implements Exporter {
  async export(model: LayersModel, dir: string, metadata: Record<string, unknown>): Promise<Artifact> {
    await writeDirAtomic(dir, (tmp) => saveModel(model, tmp, metadata));
    const files = await readdir(dir);
    let bytes = 0;
    for (const f of files) bytes += (await stat(join(dir, f))).size;
    return { format: 'tfjs', dir, model, files, report: { bytes } };
  }

  /** Writes every format of config.export.formats, reloads and evaluates each (core/src/export/service.ts). */
  async finish(artifact: Artifact, ctx: TrainContext): Promise<Artifact> {
    const transform = (b: Parameters<TrainContext['hooks']['evalBatch']['call']>[0]) => ctx.hooks.evalBatch.call(b, ctx);
    const batchSize = ctx.config.evalBatchSize;
    const exports = await exportRun(artifact, {
      out: ctx.out,
      formats: ctx.config.export?.formats ?? ['tfjs'],
      model: ctx.model,
      ev: { data: ctx.val, batchSize, transform, calibration: () => calibrationBatches(ctx.train, batchSize, transform) },
      log: (m) => ctx.logger.info(m),
    });
    return { ...artifact, report: { ...artifact.report, exports } };
  }
}
