/**
 * What a user of an exported model must know to feed it an image: the `inference` metadata that every export
 * carries (model.json's userDefinedMetadata.inference, ONNX metadata_props `tricks.inference`), how it is made
 * from a trained model and its run's evaluation transform, and how to read it back.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import onnxProto from 'onnx-proto';
import { TricksError, toBatch, type Batch, type ResizePolicy } from '@tricks/core';
import { GRAY_WEIGHTS, type DeployPlan } from './deploy.js';

export interface InferenceMeta {
  /** Index -> name ("0".."K-1" when the data has none). */
  classNames: string[];
  /** [height, width] the model takes. */
  inputSize: [number, number];
  /** 1 or 3: the channels of the model's input. */
  channels: number;
  /** How the run's evaluation brought an image to inputSize (the dataset's ResizePolicy). */
  resize: { policy: ResizePolicy['policy']; cropPct?: number; interpolation: 'bilinear' | 'lanczos3' };
  /** 'pixels': raw 0-255 values, the preprocessing is inside; 'normalized' (--raw): apply `preprocessing` yourself. */
  input: 'pixels' | 'normalized';
  /** Per channel of the network (after `gray`): x' = x * scale + offset from 0-255 values; inside, or to apply. */
  preprocessing: { scale: number[]; offset: number[] };
  output: 'logits' | 'probabilities';
  /** A one-channel network that takes RGB: gray = weights . (r, g, b) inside, before the preprocessing. */
  gray?: { weights: number[] };
  /** Custom layer classes the model still has (Swin's WindowAttention): load `runtime` (or @tricks/models/runtime) first. */
  customLayers?: string[];
  /** The script beside model.json that registers them with the global `tf` (one script tag after tf.min.js). */
  runtime?: string;
}

export const ONNX_META_KEY = 'tricks.inference';

/** What the trainer records in a model's metadata (`tricks`). */
interface TrainedMeta {
  classNames?: string[];
  numClasses?: number;
  resize?: ResizePolicy;
}

/**
 * The run's evaluation transform of 0-255 pixels as a per-channel scale and offset: the transform (toBatch's
 * / 255, then the plugins' evalBatch taps, e.g. augment's Normalize) is applied to images of 0s, of 255s and of
 * random pixels. A transform that is not of that form (it mixes pixels or channels, or is not affine) cannot
 * go inside the model: a TricksError says so.
 */
export function probePreprocessing(
  transform: (b: Batch) => Batch,
  shape: [number, number, number],
  numClasses: number,
): { scale: number[]; offset: number[] } {
  const [h, w, c] = shape;
  const n = h * w * c;
  const images = new Uint8Array(3 * n);
  images.fill(255, n, 2 * n);
  let s = 12345;
  for (let i = 2 * n; i < 3 * n; i++) images[i] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24;
  const raw = { images, labels: new Int32Array(3), indices: Int32Array.from([0, 1, 2]) };
  const b = toBatch(raw, shape, numClasses);
  let out: Batch | undefined;
  let y: Float32Array;
  try {
    out = transform(b);
    if (out.x.shape.join() !== b.x.shape.join())
      throw new TricksError(
        `export: the evaluation transform changes the image shape (${b.x.shape.slice(1).join('x')} -> ${out.x.shape.slice(1).join('x')})`,
        'it cannot go inside the model: export with --raw and resize as the transform does',
      );
    y = out.x.dataSync() as Float32Array;
  } finally {
    tf.dispose([b.x, b.y, ...(out ? [out.x, out.y] : [])]);
  }
  const offset = Array.from({ length: c }, (_, k) => y[k]);
  const scale = Array.from({ length: c }, (_, k) => (y[n + k] - y[k]) / 255);
  for (let i = 0; i < 3 * n; i++) {
    const k = i % c;
    const want = images[i] * scale[k] + offset[k];
    if (!(Math.abs(y[i] - want) <= 1e-4 * (1 + Math.abs(want))))
      throw new TricksError(
        'export: the evaluation transform of this model is not a per-channel scale and offset of the pixels, so it cannot go inside the model',
        'export with --raw (the bare network) and apply the transform yourself',
      );
  }
  return { scale, offset };
}

/** The inference metadata of an export of `model` (a trained model with its `tricks` metadata) under `plan`. */
export function inferenceMeta(model: LayersModel, plan: DeployPlan, extra: Partial<InferenceMeta> = {}): InferenceMeta {
  const shape = model.inputs[0].shape.slice(1) as number[];
  const k = model.outputs[0].shape.at(-1) as number;
  const trained = ((model.getUserDefinedMetadata() as { tricks?: TrainedMeta } | undefined)?.tricks ?? {}) as TrainedMeta;
  const classNames = trained.classNames?.length === k ? trained.classNames : Array.from({ length: k }, (_, i) => String(i));
  return {
    classNames,
    inputSize: [shape[0], shape[1]],
    channels: plan.input === 'pixels' && plan.gray ? 3 : shape[2],
    resize: (trained.resize as InferenceMeta['resize'] | undefined) ?? { policy: 'resize', interpolation: 'bilinear' },
    input: plan.input,
    preprocessing: plan.preprocessing,
    output: plan.output,
    ...(plan.gray && plan.input === 'pixels' ? { gray: plan.gray } : {}),
    ...extra,
  };
}

/**
 * The deploy plan of an export: `raw` keeps the bare network (input 'normalized'); otherwise the preprocessing
 * goes inside and a one-channel network takes RGB (BT.601 luma inside). `probabilities` appends a softmax.
 */
export function deployPlan(
  model: LayersModel,
  preprocessing: { scale: number[]; offset: number[] },
  o: { stock: boolean; raw?: boolean; probabilities?: boolean },
): DeployPlan {
  const channels = model.inputs[0].shape.at(-1) as number;
  const pixels = !o.raw;
  return {
    stock: o.stock,
    input: pixels ? 'pixels' : 'normalized',
    preprocessing,
    ...(pixels && channels === 1 ? { gray: { weights: GRAY_WEIGHTS } } : {}),
    output: o.probabilities ? 'probabilities' : 'logits',
  };
}

function checkMeta(m: unknown, where: string): InferenceMeta {
  const x = m as InferenceMeta;
  const ok =
    x &&
    Array.isArray(x.classNames) &&
    Array.isArray(x.inputSize) &&
    x.inputSize.length === 2 &&
    (x.channels === 1 || x.channels === 3) &&
    typeof x.resize?.policy === 'string' &&
    (x.input === 'pixels' || x.input === 'normalized') &&
    Array.isArray(x.preprocessing?.scale) &&
    Array.isArray(x.preprocessing?.offset) &&
    (x.output === 'logits' || x.output === 'probabilities');
  if (!ok) throw new TricksError(`${where}: the inference metadata is incomplete`, 'export the model again with tricks export');
  return x;
}

/**
 * The inference metadata of an export: a model.json (or its directory), a model.onnx (or its directory).
 * A model without it (a training model such as OUT/model, or one exported before) gets a TricksError with the
 * command that makes an export.
 */
export async function readInferenceMeta(modelJsonOrDir: string): Promise<InferenceMeta> {
  let file = modelJsonOrDir;
  const st = await stat(file).catch(() => undefined);
  if (!st) throw new TricksError(`${file}: no such model file or directory`, 'give an export directory (model.json, or model.onnx)');
  if (st.isDirectory()) {
    const json = join(file, 'model.json');
    const onnx = join(file, 'model.onnx');
    file = (await stat(json).catch(() => undefined)) ? json : (await stat(onnx).catch(() => undefined)) ? onnx : '';
    if (!file) throw new TricksError(`${modelJsonOrDir}: no model.json or model.onnx in this directory`, 'give an export directory');
  }
  const hint = (what: string) =>
    new TricksError(
      `${file}: ${what} has no inference metadata (it is a training model, or an export of an older tricks)`,
      'make a deployable export: tricks export --model DIR --format tfjs --out EXPORT',
    );
  if (file.endsWith('.onnx')) {
    const m = onnxProto.onnx.ModelProto.decode(await readFile(file));
    const e = m.metadataProps.find((p) => p.key === ONNX_META_KEY);
    if (!e?.value) throw hint('this ONNX model');
    return checkMeta(JSON.parse(e.value), file);
  }
  let json: { userDefinedMetadata?: { inference?: unknown } };
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new TricksError(`${file}: cannot read a model.json (${(e as Error).message})`, 'give an export directory');
  }
  if (!json.userDefinedMetadata?.inference) throw hint('this model.json');
  return checkMeta(json.userDefinedMetadata.inference, file);
}
