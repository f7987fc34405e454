import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { SyncWaterfallHook } from 'tapable';
import {
  TricksError,
  createHooks,
  tapOnly,
  type Batch,
  type Hooks,
  ConsoleLogger,
  loadModel,
  type PluginDefinition,
  load,
  type TrainContext,
} from '@tricks/core';
import '@tricks/models/runtime';
import {
  calibrationBatches,
  checkFormats,
  modelQuantization,
  predictTop1,
  tfjsTop1,
  verifyRecord,
  writeFormat,
  type EvalData,
  type ExportRecord,
} from '@tricks/export';
import { cliServices } from './services.js';

export interface ExportFlags {
  model: string;
  format: string;
  out: string;
  data?: string;
  batchSize: number;
  backend: string;
  bits: number;
  perTensor?: boolean;
}

/** The evalBatch taps of the plugins a model was trained with (normalization...), as `tricks eval` applies them. */
async function evalTransform(
  meta: { tricks?: { pluginOptions?: { name: string; options: Record<string, unknown> }[] } } | undefined,
  warn: (m: string) => void,
): Promise<(b: Batch) => Batch> {
  const evalBatch = new SyncWaterfallHook<[Batch, TrainContext]>(['batch', 'ctx']);
  for (const p of meta?.tricks?.pluginOptions ?? []) {
    const { definition } = await load<PluginDefinition>(p.name, 'plugin').catch(() => ({ definition: undefined }));
    if (!definition) {
      warn(`plugin ${p.name} that the model was trained with is not installed; its evaluation transforms are skipped`);
      continue;
    }
    // real hooks of every type (a plugin may tapPromise on export), only evalBatch is ever called
    const hooks: Hooks = { ...createHooks(), evalBatch };
    definition.apply({ hooks: tapOnly(hooks), config: {} as never, registerState: () => {} }, p.options);
  }
  return (b) => evalBatch.call(b, {} as TrainContext);
}

/**
 * Converts a saved tfjs model to one or more formats (comma-separated). With --data, each artifact is reloaded
 * and evaluated on the validation split against the source model, and onnx-int8 of a float model is calibrated
 * on the training split (post-training quantization). A model written by the qat plugin carries its grid.
 */
export async function exportCommand(
  f: ExportFlags,
  logger = new ConsoleLogger(),
): Promise<{ source: string; reference_top1?: number; artifacts: ExportRecord[] }> {
  const formats = checkFormats(
    f.format
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    '--format',
  );
  if (!formats.length) throw new TricksError('--format is empty', 'give one or more of tfjs, tfjs-fp16, tfjs-uint8, onnx, onnx-int8');
  const services = await cliServices({ logger });
  await services.backend.select(f.backend);
  const model = await loadModel(resolve(f.model));
  const quantization = modelQuantization(model);
  let ev: EvalData | undefined;
  if (f.data) {
    const data = await services.datasets.create(f.data);
    const inShape = model.inputs[0].shape.slice(1);
    if (inShape.some((d, i) => d !== null && d !== data.val.shape[i])) {
      throw new TricksError(
        `model ${f.model} takes inputs of ${inShape.join('x')}, but ${f.data} has ${data.val.shape.join('x')} images`,
        'give the dataset the model was trained on',
      );
    }
    const transform = await evalTransform(model.getUserDefinedMetadata() as never, (m) => logger.warn(m));
    ev = { data: data.val, batchSize: f.batchSize, transform, calibration: () => calibrationBatches(data.train, f.batchSize, transform) };
  }
  const reference = ev ? await predictTop1(tfjsTop1(model), ev) : undefined;
  const artifacts: ExportRecord[] = [];
  for (const fmt of formats) {
    const dir = formats.length === 1 ? resolve(f.out) : join(resolve(f.out), fmt);
    let rec = await writeFormat(model, fmt, dir, { quantization, bits: f.bits, perChannel: !f.perTensor, calibration: ev?.calibration });
    if (ev && reference) rec = await verifyRecord(rec, ev, reference);
    else rec.note = 'not verified: pass --data to evaluate the artifact';
    artifacts.push(rec);
    logger.info(
      `${fmt}${rec.quantization ? ` (${rec.quantization})` : ''}: ${dir}, ${(rec.bytes / 1024).toFixed(1)} KiB${rec.top1 !== undefined ? `, top-1 ${rec.top1.toFixed(4)} (source ${reference!.top1.toFixed(4)}), agreement ${rec.agreement!.toFixed(4)}` : ''}`,
    );
  }
  model.dispose();
  return { source: resolve(f.model), ...(reference ? { reference_top1: reference.top1 } : {}), artifacts };
}

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('convert a saved model: tfjs, tfjs-fp16, tfjs-uint8, onnx (QDQ int8 for a qat model), onnx-int8; prints JSON')
    .requiredOption('--model <dir>', 'a tfjs model directory (model.json + weights), e.g. runs/x/model or runs/x/model-qat')
    .requiredOption('--format <f>', 'one format, or several separated by commas (each in OUT/<format>)')
    .requiredOption('--out <dir>', 'output directory')
    .option('--data <spec>', 'dataset to verify on (validation split) and calibrate onnx-int8 with (training split)')
    .option('--batch-size <n>', 'batch size for evaluation and calibration', (v) => Number(v), 256)
    .option('--bits <n>', 'post-training quantization bits (onnx-int8 of a float model)', (v) => Number(v), 8)
    .option('--per-tensor', 'post-training quantization: one weight scale per tensor instead of per channel')
    .addOption(
      new Option('--backend <name>', 'tfjs backend').choices(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']).default('auto'),
    )
    .action(async (f: ExportFlags) => {
      process.stdout.write(`${JSON.stringify(await exportCommand(f))}\n`);
    });
}
