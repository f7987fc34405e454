import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Command, Option } from 'commander';
import { SyncWaterfallHook } from 'tapable';
import {
  TricksError,
  createHooks,
  tapOnly,
  writeFileAtomic,
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
  claimExportFolder,
  EXPORT_MARK,
  EXPORT_FORMATS,
  modelQuantization,
  normalizeFrom,
  predictTop1,
  probePreprocessing,
  tfjsTop1,
  verifyRecord,
  writeFormat,
  type EvalData,
  type ExportRecord,
} from '@tricks/export';
import { cliServices } from './services.js';
import { folder, int } from './flags.js';

export interface ExportFlags {
  model: string;
  format: string;
  out: string;
  data?: string;
  batchSize: number;
  backend: string;
  bits: number;
  perTensor?: boolean;
  /** Keep the bare network (normalized input) instead of putting the preprocessing inside. */
  raw?: boolean;
  /** Append a softmax; commander sets false for --no-probabilities, undefined when neither is given. */
  probabilities?: boolean;
}

/** The evalBatch taps of the plugins a model was trained with (normalization...), as `tricks eval` applies them. */
export async function evalTransform(
  meta: { tricks?: { pluginOptions?: { name: string; options: Record<string, unknown> }[] }; input?: unknown } | undefined,
  warn: (m: string) => void,
): Promise<(b: Batch) => Batch> {
  const evalBatch = new SyncWaterfallHook<[Batch, TrainContext]>(['batch', 'ctx']);
  // a converted model (tricks convert) trained with no plugin here: the normalization its metadata names
  const norm = meta?.tricks?.pluginOptions?.length ? undefined : normalizeFrom(meta?.input);
  if (norm)
    evalBatch.tap('tricks:input', (b) => ({
      ...b,
      x: tf.div(tf.sub(b.x, tf.tensor1d(norm.mean)), tf.tensor1d(norm.std)) as tf.Tensor4D,
    }));
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
 * Converts a saved tfjs model to one or more formats (comma-separated). Each takes 0-255 pixels with the
 * preprocessing of the run's evaluation transform inside (unless --raw) and carries the inference metadata; the
 * tfjs formats hold stock layers only. With --data, each artifact is reloaded and evaluated on the validation
 * split against the source model, and onnx-int8 of a float model is calibrated on the training split
 * (post-training quantization). A model written by the qat plugin carries its grid.
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
  if (!formats.length) throw new TricksError('--format is empty', `give one or more of ${EXPORT_FORMATS.join(', ')}`);
  claimExportFolder(resolve(f.out));
  const services = await cliServices({ logger });
  await services.backend.select(f.backend);
  const model = await loadModel(resolve(f.model));
  const meta = model.getUserDefinedMetadata() as { inference?: unknown } | undefined;
  if (meta?.inference) {
    model.dispose();
    throw new TricksError(
      `${f.model} is already an export (its model.json has inference metadata): exporting it again would apply the preprocessing twice`,
      'export from the training model, e.g. --model runs/x/model',
    );
  }
  const quantization = modelQuantization(model);
  const transform = await evalTransform(meta as never, (m) => logger.warn(m));
  const inShape = model.inputs[0].shape.slice(1) as [number, number, number];
  // the preprocessing inside: the evaluation transform of the plugins the model was trained with, probed
  const probe = () => probePreprocessing(transform, inShape, model.outputs[0].shape.at(-1) as number);
  const preprocessing = f.raw ? probeOr(probe) : probe();
  let ev: EvalData | undefined;
  if (f.data) {
    const data = await services.datasets.create(f.data);
    if (inShape.some((d, i) => d !== null && d !== data.val.shape[i])) {
      throw new TricksError(
        `model ${f.model} takes inputs of ${inShape.join('x')}, but ${f.data} has ${data.val.shape.join('x')} images`,
        'give the dataset the model was trained on',
      );
    }
    ev = { data: data.val, batchSize: f.batchSize, transform, calibration: () => calibrationBatches(data.train, f.batchSize, transform) };
  }
  const reference = ev ? await predictTop1(tfjsTop1(model), ev) : undefined;
  const artifacts: ExportRecord[] = [];
  for (const fmt of formats) {
    const dir = formats.length === 1 ? resolve(f.out) : join(resolve(f.out), fmt);
    let rec = await writeFormat(model, fmt, dir, {
      quantization,
      bits: f.bits,
      perChannel: !f.perTensor,
      calibration: ev?.calibration,
      preprocessing,
      raw: f.raw,
      probabilities: f.probabilities,
    });
    if (ev && reference) rec = await verifyRecord(rec, ev, reference);
    else rec.note = 'not verified: pass --data to evaluate the artifact';
    artifacts.push(rec);
    logger.info(
      `${fmt}${rec.quantization ? ` (${rec.quantization})` : ''}: ${dir}, ${(rec.bytes / 1024).toFixed(1)} KiB${rec.top1 !== undefined ? `, top-1 ${rec.top1.toFixed(4)} (source ${reference!.top1.toFixed(4)}), agreement ${rec.agreement!.toFixed(4)}` : ''}`,
    );
  }
  model.dispose();
  await writeFileAtomic(join(resolve(f.out), EXPORT_MARK), JSON.stringify({ model: resolve(f.model), formats }));
  return { source: resolve(f.model), ...(reference ? { reference_top1: reference.top1 } : {}), artifacts };
}

/** With --raw a transform that is no per-channel map is fine: the metadata then says preprocessing []. */
function probeOr(probe: () => { scale: number[]; offset: number[] }): { scale: number[]; offset: number[] } {
  try {
    return probe();
  } catch (e) {
    if (e instanceof TricksError) return { scale: [], offset: [] };
    throw e;
  }
}

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description(
      'export a trained model for deployment: tfjs, tfjs-fp16, tfjs-uint8, web (tfjs + demo page), onnx (QDQ int8 for a qat model), onnx-int8; 0-255 pixels in, stock tfjs layers; prints JSON',
    )
    .requiredOption('--model <dir>', 'a tfjs model directory (model.json + weights), e.g. runs/x/model or runs/x/model-qat')
    .requiredOption('--format <f>', 'one format, or several separated by commas (each in OUT/<format>)')
    .requiredOption('--out <dir>', 'a folder of its own: new, empty, or an earlier export (which is replaced)', folder('--out'))
    .option('--data <spec>', 'dataset to verify on (validation split) and calibrate onnx-int8 with (training split)')
    .option('--batch-size <n>', 'batch size for evaluation and calibration', int('--batch-size', 1), 256)
    .option('--bits <n>', 'post-training quantization bits (onnx-int8 of a float model)', int('--bits', 2, 8), 8)
    .option('--per-tensor', 'post-training quantization: one weight scale per tensor instead of per channel')
    .option('--raw', "the bare network: it takes the run's normalized input (the metadata says how), no preprocessing inside")
    .option('--probabilities', 'append a softmax: the output is probabilities (default for web; logits for the others)')
    .option('--no-probabilities', 'the output is logits, also for web')
    .addOption(
      new Option('--backend <name>', 'tfjs backend').choices(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']).default('auto'),
    )
    .action(async (f: ExportFlags) => {
      process.stdout.write(`${JSON.stringify(await exportCommand(f))}\n`);
    });
}
