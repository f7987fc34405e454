/**
 * Writes a trained model in the requested formats, then reloads every artifact from disk and evaluates it on
 * the validation set: size on disk, top-1 next to the training model's, and the agreement of top-1
 * predictions. The trainer runs this as the last export tap (OUT/export-report.json); `tricks export` too.
 */
import { EXPORT_MARK } from './folder.js';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  type Dataset,
  loadBatches,
  TricksError,
  type Batch,
  writeDirAtomic,
  writeFileAtomic,
  loadModel,
  toBatch,
  closest,
} from '@tricks/core';
import { toOnnx } from './onnx.js';
import type { ModelQuantization } from '@tricks/helper-quant';
import { calibrateInputRanges, quantizeModel } from './quantize.js';
import { saveTfjs, TFJS_FORMATS, type TfjsFormat } from './tfjs-formats.js';
import { deployModel } from './deploy.js';
import { deployPlan, inferenceMeta, ONNX_META_KEY, probePreprocessing, type InferenceMeta } from './inference.js';
import { demoPage, RUNTIME_SCRIPT, runtimeScript, TF_SCRIPT, tfMinJs } from './web.js';

export const EXPORT_FORMATS = ['tfjs', 'tfjs-fp16', 'tfjs-uint8', 'web', 'onnx', 'onnx-int8'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export function checkFormats(formats: string[], where = 'export.formats'): ExportFormat[] {
  for (const f of formats) {
    if (!(EXPORT_FORMATS as readonly string[]).includes(f))
      throw new TricksError(
        `${where}: unknown export format "${f}"${closest(f, [...EXPORT_FORMATS])}`,
        `formats: ${EXPORT_FORMATS.join(', ')}`,
      );
  }
  return formats as ExportFormat[];
}

export interface ExportRecord {
  format: string;
  dir: string;
  files: string[];
  bytes: number;
  /** 'qat' (the grid QAT trained on), 'ptq' (post-training calibration), or absent for float. */
  quantization?: string;
  /** What the artifact takes ('pixels': 0-255, preprocessing inside) and gives (see InferenceMeta). */
  input?: InferenceMeta['input'];
  output?: InferenceMeta['output'];
  /** Layers the deploy rewrite replaced or dropped, by class. */
  rewritten?: Record<string, number>;
  /** Custom layer classes left (they need tricks-layers.js, or @tricks/models/runtime). */
  customLayers?: string[];
  top1?: number;
  /** Top-1 of the training model on the same images. */
  reference_top1?: number;
  /** Fraction of images where the artifact's top-1 class equals the training model's. */
  agreement?: number;
  count?: number;
  note?: string;
}

/** Evaluation data: the validation set and the evalBatch transform of the run. */
export interface EvalData {
  data: Dataset;
  batchSize: number;
  transform: (b: Batch) => Batch;
  /** Training batches for post-training calibration (x after the evalBatch transform). */
  calibration?: () => Iterable<tf.Tensor4D> | AsyncIterable<tf.Tensor4D>;
}

/** A batch's uint8 images as float 0-255 values, for a model that takes pixels; a gray dataset tiled to `channels` (RGB). */
export function pixelBatch(images: Uint8Array, shape: [number, number, number], channels: number): tf.Tensor4D {
  return tf.tidy(() => {
    const x = tf.tensor4d(Float32Array.from(images), [images.length / (shape[0] * shape[1] * shape[2]), ...shape]);
    return channels === shape[2] ? x : tf.tile(x, [1, 1, 1, channels / shape[2]]);
  });
}

/**
 * Top-1 predictions of a batch function over a dataset, and its top-1 accuracy. With `pixels` (the channels of a
 * model that takes 0-255 pixels) the batches are the dataset's own uint8 values, without the transform.
 */
export async function predictTop1(
  run: (x: tf.Tensor4D) => Promise<Int32Array>,
  ev: EvalData,
  pixels?: number,
): Promise<{ preds: Int32Array; top1: number }> {
  const preds = new Int32Array(ev.data.length);
  let correct = 0,
    i = 0;
  const all = Int32Array.from({ length: ev.data.length }, (_, k) => k);
  for await (const raw of loadBatches(ev.data, all, ev.batchSize)) {
    const b = pixels
      ? { x: pixelBatch(raw.images, ev.data.shape, pixels), y: tf.zeros([0]) }
      : ev.transform(toBatch(raw, ev.data.shape, ev.data.numClasses));
    let p: Int32Array;
    try {
      p = await run(b.x);
    } finally {
      tf.dispose([b.x, b.y]);
    }
    for (let j = 0; j < p.length; j++, i++) {
      preds[i] = p[j];
      if (p[j] === raw.labels[j]) correct++;
    }
  }
  return { preds, top1: correct / ev.data.length };
}

export const tfjsTop1 = (model: LayersModel) => async (x: tf.Tensor4D) => {
  const t = tf.tidy(() => tf.topk(model.apply(x, { training: false }) as tf.Tensor2D, 1).indices);
  const v = (await t.data()) as Int32Array;
  t.dispose();
  return Int32Array.from(v);
};

type OrtModule = typeof import('onnxruntime-node');
let ort: Promise<OrtModule> | undefined;
export function loadOrt(): Promise<OrtModule> {
  ort ??= import('onnxruntime-node').catch((e) => {
    ort = undefined;
    throw new TricksError(
      `onnxruntime-node cannot be loaded (${(e as Error).message})`,
      'install it (npm install onnxruntime-node) to check ONNX exports',
    );
  });
  return ort;
}

/** An ONNX Runtime session over a model file; run(x NHWC) -> top-1 classes. */
export async function onnxTop1(
  file: string,
  threads = 1,
): Promise<{ run: (x: tf.Tensor4D) => Promise<Int32Array>; release: () => Promise<void> }> {
  const o = await loadOrt();
  const s = await o.InferenceSession.create(file, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  return {
    run: async (x) => {
      const r = await s.run({ input: new o.Tensor('float32', (await x.data()) as Float32Array, x.shape) });
      const y = r.logits.data as Float32Array;
      const k = r.logits.dims[1] as number;
      const out = new Int32Array(x.shape[0]);
      for (let i = 0; i < out.length; i++) {
        let best = 0;
        for (let c = 1; c < k; c++) if (y[i * k + c] > y[i * k + best]) best = c;
        out[i] = best;
      }
      return out;
    },
    release: () => s.release(),
  };
}

async function dirBytes(dir: string): Promise<{ files: string[]; bytes: number }> {
  const files = await readdir(dir);
  let bytes = 0;
  for (const f of files) bytes += (await stat(join(dir, f))).size;
  return { files, bytes };
}

/** The quantization grid a model carries in its metadata (written by the qat plugin), if any. */
export function modelQuantization(model: LayersModel): ModelQuantization | undefined {
  const meta = model.getUserDefinedMetadata() as { tricks_quantization?: { layers: ModelQuantization } } | undefined;
  return meta?.tricks_quantization?.layers;
}

export interface WriteOptions {
  /**
   * Per channel x' = x * scale + offset from 0-255 pixels: what the network was trained on (probePreprocessing of
   * the run's evaluation transform). Default: toBatch's own x / 255, a run without normalization.
   */
  preprocessing?: { scale: number[]; offset: number[] };
  /** Keep the bare network (input 'normalized'): no preprocessing inside. */
  raw?: boolean;
  /** Append a softmax (output 'probabilities'). Default: for 'web' only. */
  probabilities?: boolean;
  /** The grid QAT trained on, keyed by the layers of `model` (already folded, kernels on the grid). */
  quantization?: ModelQuantization;
  /** Post-training quantization for 'onnx-int8' when there is no QAT grid. */
  bits?: number;
  perChannel?: boolean;
  calibration?: () => Iterable<tf.Tensor4D> | AsyncIterable<tf.Tensor4D>;
}

/**
 * Writes one format into `dir`; returns the record without evaluation. Every format goes through the deploy
 * rewrite (deploy.ts): the preprocessing inside unless `raw`, the stock-layer form for the tfjs formats, the
 * inference metadata in model.json (userDefinedMetadata.inference) or model.onnx (metadata_props tricks.inference).
 * 'web' is 'tfjs' plus index.html and tf.min.js, with a softmax by default.
 */
export async function writeFormat(model: LayersModel, format: ExportFormat, dir: string, o: WriteOptions = {}): Promise<ExportRecord> {
  let quantization: string | undefined;
  const tfjsLike = format === 'web' || (TFJS_FORMATS as readonly string[]).includes(format);
  const channels = model.inputs[0].shape.at(-1) as number;
  const plan = deployPlan(
    model,
    o.preprocessing ?? { scale: new Array<number>(channels).fill(1 / 255), offset: new Array<number>(channels).fill(0) },
    { stock: tfjsLike, raw: o.raw, probabilities: o.probabilities ?? format === 'web' },
  );
  const trainedMeta = (model.getUserDefinedMetadata() as Record<string, unknown> | undefined) ?? {};
  let rewritten: Record<string, number>;
  let customLayers: string[];
  if (tfjsLike) {
    const d = deployModel(model, plan);
    ({ rewritten, customLayers } = d);
    try {
      const extra: Record<string, string | Uint8Array> = {};
      if (customLayers.length) extra[RUNTIME_SCRIPT] = runtimeScript();
      const meta = inferenceMeta(model, plan, customLayers.length ? { customLayers, runtime: RUNTIME_SCRIPT } : {});
      if (format === 'web') {
        const name = (trainedMeta.tricks as { model?: string } | undefined)?.model ?? model.name;
        extra['index.html'] = demoPage(meta, `${name}: ${meta.classNames.length} classes`);
        extra[TF_SCRIPT] = tfMinJs();
      }
      await saveTfjs(d.model, dir, format === 'web' ? 'tfjs' : (format as TfjsFormat), { ...trainedMeta, inference: meta }, extra);
    } finally {
      d.model.dispose();
    }
    if (o.quantization) quantization = 'qat';
  } else {
    let q = o.quantization;
    let m = model;
    if (q) quantization = 'qat';
    else if (format === 'onnx-int8') {
      if (!o.calibration)
        throw new TricksError(
          'onnx-int8 of a model trained without qat needs calibration data',
          'pass --data to tricks export, or train with the qat plugin',
        );
      const batches: tf.Tensor4D[] = [];
      for await (const x of o.calibration()) batches.push(x);
      const ranges = calibrateInputRanges(model, batches);
      tf.dispose(batches);
      ({ model: m, quantization: q } = await quantizeModel(model, {
        bits: o.bits ?? 8,
        perChannel: o.perChannel ?? true,
        inputRanges: ranges,
      }));
      quantization = 'ptq';
    }
    // the quantized network's layers keep their names in the rewrite: the grid still applies
    const d = deployModel(m, plan);
    ({ rewritten, customLayers } = d);
    let bytes: Uint8Array;
    try {
      bytes = toOnnx(d.model, { quantization: q, metadata: { [ONNX_META_KEY]: JSON.stringify(inferenceMeta(model, plan)) } });
    } finally {
      d.model.dispose();
      if (m !== model) m.dispose();
    }
    await writeDirAtomic(dir, (tmp) => writeFileAtomic(join(tmp, 'model.onnx'), bytes));
  }
  return {
    format,
    dir,
    ...(await dirBytes(dir)),
    ...(quantization ? { quantization } : {}),
    input: plan.input,
    output: plan.output,
    rewritten,
    ...(tfjsLike && customLayers.length ? { customLayers } : {}),
  };
}

/** Reloads an artifact from disk (plain loaders only) and fills in top-1 and agreement with `reference`. */
export async function verifyRecord(rec: ExportRecord, ev: EvalData, reference: { preds: Int32Array; top1: number }): Promise<ExportRecord> {
  let res: { preds: Int32Array; top1: number };
  // an artifact that takes pixels gets the dataset's own values: the round trip of the preprocessing inside
  const pixels = rec.input === 'pixels' ? (ev.data.shape[2] === 1 ? 3 : ev.data.shape[2]) : undefined;
  if (rec.format.startsWith('onnx')) {
    const s = await onnxTop1(join(rec.dir, 'model.onnx'));
    try {
      res = await predictTop1(s.run, ev, pixels);
    } finally {
      await s.release();
    }
  } else {
    const m = await loadModel(rec.dir);
    try {
      res = await predictTop1(tfjsTop1(m), ev, pixels);
    } finally {
      m.dispose();
    }
  }
  let same = 0;
  for (let i = 0; i < res.preds.length; i++) if (res.preds[i] === reference.preds[i]) same++;
  return { ...rec, top1: res.top1, reference_top1: reference.top1, agreement: same / res.preds.length, count: res.preds.length };
}

/** Training batches for post-training calibration: the first `n` batches of the training set, eval transform applied. */
export async function* calibrationBatches(
  data: Dataset,
  batchSize: number,
  transform: (b: Batch) => Batch,
  n = 8,
): AsyncGenerator<tf.Tensor4D> {
  const idx = Int32Array.from({ length: Math.min(data.length, n * batchSize) }, (_, k) => k);
  for await (const raw of loadBatches(data, idx, batchSize)) {
    const b = transform(toBatch(raw, data.shape, data.numClasses));
    b.y.dispose();
    yield b.x;
  }
}

/**
 * The preprocessing of a model's evaluation transform, probed (probePreprocessing); when it cannot go inside
 * the model the exports keep the bare network (raw), with a warning.
 */
export function runPreprocessing(
  model: LayersModel,
  transform: (b: Batch) => Batch,
  warn: (m: string) => void,
): { preprocessing: { scale: number[]; offset: number[] }; raw: boolean } {
  const shape = model.inputs[0].shape.slice(1) as [number, number, number];
  try {
    return { preprocessing: probePreprocessing(transform, shape, model.outputs[0].shape.at(-1) as number), raw: false };
  } catch (e) {
    if (!(e instanceof TricksError)) throw e;
    warn(`${e.message}; the exports take the network's own input (raw, preprocessing [] in their metadata)`);
    return { preprocessing: { scale: [], offset: [] }, raw: true };
  }
}

/** What the trainer's last export tap needs from the run. */
export interface RunExportContext {
  out: string;
  formats: string[];
  /** The training model (with any plugin's simulation, e.g. QAT's fake quantization): the reference. */
  model: LayersModel;
  ev: EvalData;
  log: (msg: string) => void;
}

/**
 * The export stage of a run: every requested format from the final artifact (after prune, qat...), each
 * reloaded and evaluated; OUT/export-report.json; the records in the artifact's report (run.json).
 * A tfjs artifact already on disk (OUT/model, or a plugin's) is verified where it is.
 */
export async function exportRun(
  artifact: { format: string; dir: string; model: LayersModel; report: Record<string, unknown>; [k: string]: unknown },
  rc: RunExportContext,
): Promise<ExportRecord[]> {
  const formats = checkFormats(rc.formats);
  const reference = await predictTop1(tfjsTop1(rc.model), rc.ev);
  const quantization = (artifact.quantization as ModelQuantization | undefined) ?? modelQuantization(artifact.model);
  const { preprocessing, raw } = runPreprocessing(artifact.model, rc.ev.transform, rc.log);
  const records: ExportRecord[] = [];
  for (const f of formats) {
    // OUT/model stays the training model (eval, resume); the deployable one is OUT/export/<format>
    let rec = await writeFormat(artifact.model, f, join(rc.out, 'export', f), {
      quantization,
      calibration: rc.ev.calibration,
      preprocessing,
      raw,
    });
    rec = await verifyRecord(rec, rc.ev, reference);
    records.push(rec);
    rc.log(
      `export ${f}${rec.quantization ? ` (${rec.quantization})` : ''}: ${rec.dir}, ${(rec.bytes / 1024).toFixed(1)} KiB, top-1 ${rec.top1!.toFixed(4)} (training model ${reference.top1.toFixed(4)}), agreement ${rec.agreement!.toFixed(4)}`,
    );
  }
  await writeFileAtomic(join(rc.out, 'export', EXPORT_MARK), JSON.stringify({ model: artifact.dir, formats }));
  await writeFileAtomic(
    join(rc.out, 'export-report.json'),
    JSON.stringify({ reference: { top1: reference.top1, count: reference.preds.length }, artifacts: records }, null, 1),
  );
  return records;
}
