import { definePlugin, STAGE_REPORT, type Artifact, type Batch, type TrainContext } from '@tricks/core';
import { calibrationBatches, checkFormats, exportRun } from './service.js';

/** Writes every format of config.export.formats from the final artifact, then reloads and evaluates each. */
export async function exportFormats(artifact: Artifact, ctx: TrainContext): Promise<Artifact> {
  const transform = (b: Batch) => ctx.evalTransform(b);
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

/** The built-in plugin behind config.export.formats: formats are checked when it is applied (before training), written by the last export tap. */
export const exportBuiltin = definePlugin({
  name: 'tricks:export',
  description: 'writes and verifies the export formats of config.export.formats at the end of a run',
  apply(api) {
    checkFormats(api.config.export?.formats ?? ['tfjs']);
    api.hooks.export.tapPromise({ name: 'tricks:export', stage: STAGE_REPORT }, exportFormats);
  },
});
