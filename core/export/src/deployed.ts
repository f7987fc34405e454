/**
 * A saved model opened for inference, whatever its format: a tfjs folder (model.json: float32, fp16 or uint8
 * weights) through tfjs, or an ONNX export (model.onnx) through onnxruntime-node. `tricks predict`, `tricks eval`
 * and `tricks bench --runtime onnx` use it.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import onnxProto from 'onnx-proto';
import { loadModel, TricksError, type ResizePolicy } from '@tricks/core';
import { toOnnx } from './onnx.js';
import { loadOrt } from './service.js';
import { ONNX_META_KEY, type InferenceMeta } from './inference.js';

/** The `inference` metadata of an export (inference.ts's InferenceMeta; the name the first readers used). */
export type InferenceMetaFields = InferenceMeta;

export interface DeployedModel {
  format: 'tfjs' | 'onnx';
  /** The file the model came from (model.json or model.onnx). */
  file: string;
  /** [height, width, channels] of one input image. */
  inputShape: [number, number, number];
  /** The export's inference metadata; undefined for a training model (OUT/model) or an older export. */
  meta?: InferenceMetaFields;
  /** model.json's userDefinedMetadata.tricks (the plugins a training model was trained with), when present. */
  tricks?: {
    plugins?: string[];
    pluginOptions?: { name: string; options: Record<string, unknown> }[];
    resize?: ResizePolicy;
    classNames?: string[];
  };
  /**
   * The per-channel normalization a model's input takes after x / 255, from model.json's userDefinedMetadata.input
   * (what `tricks convert` writes: ImageNet's mean and std), when present.
   */
  normalize?: { mean: number[]; std: number[] };
  /** The tfjs model (format tfjs). */
  model?: LayersModel;
  /** The model's outputs for an NHWC float32 batch, [n, classes] row-major: logits, or probabilities if meta says so. */
  run(x: tf.Tensor4D): Promise<{ scores: Float32Array; classes: number }>;
  dispose(): Promise<void>;
}

/** model.json or model.onnx in `dir` (a tfjs folder wins when both are there), or a path to either file. */
export function modelFile(dir: string): { file: string; format: 'tfjs' | 'onnx' } {
  if (!existsSync(dir))
    throw new TricksError(`--model ${dir} does not exist`, 'give a model folder (model.json or model.onnx inside), e.g. runs/q/model');
  if (statSync(dir).isFile()) {
    if (dir.endsWith('.onnx')) return { file: dir, format: 'onnx' };
    if (dir.endsWith('.json')) return { file: dir, format: 'tfjs' };
    throw new TricksError(`--model ${dir} is neither a model.json nor a .onnx file`, 'give the model folder or one of those files');
  }
  if (existsSync(join(dir, 'model.json'))) return { file: join(dir, 'model.json'), format: 'tfjs' };
  if (existsSync(join(dir, 'model.onnx'))) return { file: join(dir, 'model.onnx'), format: 'onnx' };
  throw new TricksError(
    `--model ${dir} holds no model.json and no model.onnx`,
    'give the folder a run or `tricks export` wrote, e.g. runs/q/model',
  );
}

const metaFrom = (v: unknown): InferenceMetaFields | undefined =>
  v && typeof v === 'object' && Array.isArray((v as InferenceMetaFields).inputSize) ? (v as InferenceMetaFields) : undefined;

/** The ONNX graph's metadata_props and its input's NHWC dims, read with onnx-proto (no session needed). */
export function onnxInfo(file: string): { props: Record<string, string>; inputShape: (number | null)[] } {
  let m;
  try {
    m = onnxProto.onnx.ModelProto.decode(readFileSync(file));
  } catch (e) {
    throw new TricksError(
      `${file} is not a readable ONNX model (${(e as Error).message})`,
      'export it again with `tricks export --format onnx`',
    );
  }
  const props = Object.fromEntries((m.metadataProps ?? []).map((p) => [String(p.key), String(p.value)]));
  const dims = m.graph?.input?.[0]?.type?.tensorType?.shape?.dim ?? [];
  return { props, inputShape: dims.map((d) => (d.dimValue ? Number(d.dimValue) : null)) };
}

/** userDefinedMetadata.input's mean and std (a converted model's), when they are per-channel number arrays. */
export function normalizeFrom(input: unknown): DeployedModel['normalize'] {
  const { mean, std } = (input ?? {}) as { mean?: unknown; std?: unknown };
  const nums = (v: unknown): v is number[] =>
    Array.isArray(v) && v.length > 0 && v.every((n) => typeof n === 'number' && Number.isFinite(n));
  if (!nums(mean) || !nums(std) || mean.length !== std.length || std.some((s) => s <= 0)) return undefined;
  return { mean, std };
}

/** Opens a saved model for inference: tfjs (model.json) through tfjs, ONNX through onnxruntime-node (`threads` intra-op). */
export async function openDeployed(dir: string, opts: { threads?: number } = {}): Promise<DeployedModel> {
  const { file, format } = modelFile(dir);
  if (format === 'tfjs') {
    const model = await loadModel(statSync(dir).isFile() ? join(dir, '..') : dir);
    const ud = (model.getUserDefinedMetadata() ?? {}) as { inference?: unknown; tricks?: DeployedModel['tricks']; input?: unknown };
    const [, h, w, c] = model.inputs[0].shape as number[];
    return {
      format,
      file,
      inputShape: [h, w, c],
      meta: metaFrom(ud.inference),
      tricks: ud.tricks,
      normalize: normalizeFrom(ud.input),
      model,
      run: async (x) => {
        const y = model.predict(x) as tf.Tensor2D;
        const scores = (await y.data()) as Float32Array;
        const classes = y.shape[1];
        y.dispose();
        return { scores, classes };
      },
      dispose: async () => {
        model.dispose();
      },
    };
  }
  const info = onnxInfo(file);
  const ort = await loadOrt();
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: opts.threads ?? 1, interOpNumThreads: 1 });
  const [, h, w, c] = info.inputShape;
  let meta: InferenceMetaFields | undefined;
  try {
    meta = info.props[ONNX_META_KEY] ? metaFrom(JSON.parse(info.props[ONNX_META_KEY])) : undefined;
  } catch {
    throw new TricksError(`${file}: its metadata "${ONNX_META_KEY}" is not JSON`, 'export the model again');
  }
  const input = session.inputNames[0],
    output = session.outputNames[0];
  return {
    format,
    file,
    inputShape: [h ?? meta?.inputSize[0] ?? NaN, w ?? meta?.inputSize[1] ?? NaN, c ?? meta?.channels ?? NaN],
    meta,
    run: async (x) => {
      const r = await session.run({ [input]: new ort.Tensor('float32', (await x.data()) as Float32Array, x.shape) });
      const y = r[output];
      return { scores: y.data as Float32Array, classes: Number(y.dims[1]) };
    },
    dispose: async () => {
      await session.release();
    },
  };
}

/**
 * Inference images/s of a model exported to ONNX (in memory) and run by onnxruntime-node on random NHWC input,
 * the whole batch per run, as `benchTrain`'s inference and the PyTorch reference time it.
 */
export async function benchOnnxInference(
  model: LayersModel,
  o: { batchSize: number; steps?: number; warmup?: number; threads?: number },
): Promise<{ inferImagesPerSec: number; threads: number }> {
  const ort = await loadOrt();
  const threads = o.threads ?? 1;
  const session = await ort.InferenceSession.create(toOnnx(model), { intraOpNumThreads: threads, interOpNumThreads: 1 });
  try {
    const [, h, w, c] = model.inputs[0].shape as number[];
    const data = Float32Array.from({ length: o.batchSize * h * w * c }, () => Math.random());
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [o.batchSize, h, w, c]) };
    for (let i = 0; i < (o.warmup ?? 2); i++) await session.run(feeds);
    const steps = o.steps ?? 5;
    const t = performance.now();
    for (let i = 0; i < steps; i++) await session.run(feeds);
    return { inferImagesPerSec: (o.batchSize * steps) / ((performance.now() - t) / 1000), threads };
  } finally {
    await session.release();
  }
}
