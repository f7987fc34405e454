import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Artifact } from '../hooks/hooks.js';
import { writeDirAtomic } from '../io/atomic.js';
import { saveModel } from '../io/model-files.js';

/** Writes the trained model. A service: the export hook then turns this artifact into others. */
export interface Exporter {
  export(model: LayersModel, dir: string, metadata: Record<string, unknown>): Promise<Artifact>;
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
}
