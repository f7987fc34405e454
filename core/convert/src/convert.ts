import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { ModelRegistry, TricksError, saveModel, writeDirAtomic } from '@tricks/core';
import { countParams, registerModels } from '@tricks/models';
import { CheckpointError, isLegacyTorch, isPickle, isZip, readTorchLegacy, readTorchZip } from './torch.js';
import { isSafetensors, readSafetensors } from './safetensors.js';
import { SOURCE_MODELS, sourceModel, type SourceModel } from './names.js';
import { numel, permute, type CheckpointTensor } from './tensor.js';

/** ImageNet's mean and std (RGB, on [0, 1] pixels): what every torchvision and timm model here expects. */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];
/** What a converted model takes, as its metadata and the CLI say it. */
export const INPUT_TEXT =
  'float32 NHWC, RGB scaled to [0, 1] then ImageNet-normalized ((x - mean) / std per channel), as the torchvision model takes it (in NCHW)';

export type CheckpointFormat = 'pytorch-zip' | 'pytorch-legacy' | 'safetensors';

export interface Checkpoint {
  file: string;
  format: CheckpointFormat;
  tensors: Map<string, CheckpointTensor>;
}

/** Reads a checkpoint file: a PyTorch .pth/.pt (zip or legacy) or a .safetensors, told apart by their bytes. */
export async function readCheckpoint(file: string): Promise<Checkpoint> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new TricksError(
      `${file}: cannot read the checkpoint (${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a folder' : (e as Error).message})`,
      'give the .pth, .pt or .safetensors file you downloaded',
    );
  }
  try {
    if (isZip(bytes)) return { file, format: 'pytorch-zip', tensors: readTorchZip(bytes) };
    if (isLegacyTorch(bytes)) return { file, format: 'pytorch-legacy', tensors: readTorchLegacy(bytes) };
    if (isSafetensors(bytes)) return { file, format: 'safetensors', tensors: readSafetensors(bytes) };
    if (isPickle(bytes))
      throw new CheckpointError(
        'it is a plain pickle, not a file torch.save wrote',
        'save the weights with torch.save(model.state_dict(), path)',
      );
  } catch (e) {
    if (e instanceof CheckpointError) throw new TricksError(`${file}: ${e.message}`, e.hint);
    throw e;
  }
  const what =
    bytes.length === 0 ? 'it is empty' : 'its bytes are neither a PyTorch checkpoint (a zip, or a legacy torch pickle) nor safetensors';
  throw new TricksError(`${file} is not a checkpoint: ${what}`, 'give a .pth/.pt file written by torch.save, or a .safetensors file');
}

/** One zoo weight and the checkpoint tensor it comes from. */
interface Slot {
  key: string;
  variable: tf.Variable;
  /** The shape the torch tensor must have. */
  torchShape: number[];
  toZoo: (v: Float32Array, shape: number[]) => Float32Array;
  what: string;
}

const same = (v: Float32Array) => v;
/** PyTorch's layout of each zoo weight and the rearrangement into the zoo's. */
function slotsOf(layer: LayersModel['layers'][number], prefix: string): Omit<Slot, 'variable' | 'what'>[] | undefined {
  const cls = layer.getClassName();
  const out: Omit<Slot, 'variable' | 'what'>[] = [];
  for (const w of layer.weights) {
    const wname = w.originalName.split('/').pop()!;
    const s = w.shape as number[];
    const push = (key: string, torchShape: number[], toZoo: Slot['toZoo']) => out.push({ key: `${prefix}.${key}`, torchShape, toZoo });
    if (cls === 'Conv2D' && wname === 'kernel')
      push('weight', [s[3], s[2], s[0], s[1]], (v, t) => permute(v, t, [2, 3, 1, 0])); // OIHW -> HWIO
    else if (cls === 'DepthwiseConv2D' && wname === 'depthwise_kernel')
      push('weight', [s[2] * s[3], 1, s[0], s[1]], (v) => permute(v, [s[2], s[3], s[0], s[1]], [2, 3, 0, 1])); // [C*m,1,kh,kw] -> [kh,kw,C,m]
    else if (cls === 'GroupedConv2D' && wname === 'kernel') {
      const groups = (layer as unknown as { groups: number }).groups;
      const [k, , cin, fg] = s;
      const cg = cin / groups;
      // torch [G*fg, cg, k, k] viewed as [G, fg, cg, k, k] -> [k, k, G, cg, fg] = [k, k, Cin, fg]
      push('weight', [groups * fg, cg, k, k], (v) => permute(v, [groups, fg, cg, k, k], [3, 4, 0, 2, 1]));
    } else if ((cls === 'Dense' && wname === 'kernel') || (cls === 'WindowAttention' && wname.endsWith('_kernel')))
      push(cls === 'Dense' ? 'weight' : `${wname.replace('_kernel', '')}.weight`, [s[1], s[0]], (v, t) => permute(v, t, [1, 0]));
    else if (cls === 'WindowAttention') push(wname === 'relative_position_bias_table' ? wname : wname.replace('_bias', '.bias'), s, same);
    else if (cls === 'BatchNormalization' || cls === 'LayerNormalization') {
      const key = { gamma: 'weight', beta: 'bias', moving_mean: 'running_mean', moving_variance: 'running_var' }[wname];
      if (!key) return undefined;
      push(key, s, same);
    } else if (wname === 'bias') push('bias', s, same);
    else return undefined;
  }
  return out;
}

/** Buffers torch saves that the zoo derives (BN's step counter, Swin's relative position index). */
const IGNORED = /(^|\.)(num_batches_tracked|relative_position_index)$/;

/** A guess at a state_dict's architecture from its keys, for the error of a checkpoint of another model. */
export function guessModel(tensors: Map<string, CheckpointTensor>): string | undefined {
  const has = (k: string) => tensors.has(k);
  const keys = [...tensors.keys()];
  if (keys.some((k) => k.includes('.attn.qkv.'))) return has('features.0.0.weight') ? 'swin_t' : undefined;
  if (has('classifier.3.weight'))
    return has('features.16.0.weight') ? 'mobilenet_v3_large' : has('features.12.0.weight') ? 'mobilenet_v3_small' : undefined;
  if (has('classifier.1.weight') && has('features.8.0.weight')) return 'efficientnet_b0';
  if (!has('fc.weight')) return undefined;
  const deep = has('conv1.0.weight');
  const depth = has('layer1.0.conv3.weight') ? '50' : has('layer3.5.conv1.weight') ? '34' : '18';
  if (depth === '50' && !deep && tensors.get('layer1.0.conv2.weight')?.shape[1] === 4) return 'resnext50_32x4d';
  return `resnet${depth}${deep ? 'd' : ''}`;
}

/** A hint for the layouts of timm's that have no key rules here (they name their modules differently from torchvision). */
function unmappedLayout(tensors: Map<string, CheckpointTensor>): string | undefined {
  const keys = [...tensors.keys()];
  const timm = keys.includes('conv_stem.weight')
    ? "timm's EfficientNet/MobileNetV3 layout (conv_stem, blocks.S.B...)"
    : keys.some((k) => k.startsWith('layers.0.blocks.0.attn.'))
      ? "timm's Swin layout (layers.S.blocks.B...)"
      : undefined;
  return timm && `it is ${timm}, which tricks convert does not map: use torchvision's weights of that model (docs/pretrained.md)`;
}

export interface ConvertOptions {
  /** A published name (resnet50, mobilenet_v3_large, resnet50d...) or a zoo name (resnet50-b...). */
  model: string;
  /** false: load what matches, leave the rest as initialized, and list it. Default true. */
  strict?: boolean;
  /** The classifier's class count; default: the checkpoint's. */
  classes?: number;
  /** Input height and width; default: the size the weights were published at (224). */
  inputSize?: number;
}

export interface ConvertReport {
  file: string;
  format: CheckpointFormat;
  source: string;
  publisher: string;
  zoo: string;
  inputShape: [number, number, number];
  numClasses: number;
  /** Checkpoint tensors loaded into the zoo model. */
  loaded: number;
  parameters: number;
  /** What --strict false left out: checkpoint tensors not used, and zoo weights left at their initial values. */
  skipped: { key: string; reason: string }[];
  seconds: number;
}

const shapeText = (s: number[]) => `[${s.join(', ')}]`;

function listed(title: string, lines: string[], max = 6): string[] {
  if (!lines.length) return [];
  const more = lines.length > max ? [`  ... and ${lines.length - max} more`] : [];
  return [`${title} (${lines.length}):`, ...lines.slice(0, max).map((l) => `  ${l}`), ...more];
}

/** The zoo model built for a source model, with PyTorch's padding (Swin has no padded strided layer). */
export function buildZooModel(src: SourceModel, inputSize: number, numClasses: number): LayersModel {
  const options = src.zoo === 'swin-t' ? {} : { padding: 'torch' };
  return registerModels(new ModelRegistry()).build(src.zoo, { inputShape: [inputSize, inputSize, 3], numClasses, options });
}

/** Maps a checkpoint onto its zoo model. Strict: any missing, extra or misshapen tensor is one TricksError. */
export function convertCheckpoint(ckpt: Checkpoint, o: ConvertOptions): { model: LayersModel; report: ConvertReport } {
  const t0 = performance.now();
  const src = sourceModel(o.model);
  if (!src) {
    throw new TricksError(
      `--model ${o.model}: no converter for that model`,
      `torchvision and timm names: ${SOURCE_MODELS.map((s) => s.name).join(', ')} (or the zoo's: ${SOURCE_MODELS.map((s) => s.zoo).join(', ')})`,
    );
  }
  const strict = o.strict ?? true;
  const { tensors, file } = ckpt;
  const headShape = tensors.get(src.head)?.shape;
  const numClasses = o.classes ?? (headShape?.length === 2 ? headShape[0] : 1000);
  const inputSize = o.inputSize ?? src.inputSize;
  const model = buildZooModel(src, inputSize, numClasses);
  try {
    const layers = new Set(model.layers.map((l) => l.name));
    const slots: Slot[] = [];
    const unmapped: string[] = [];
    for (const layer of model.layers) {
      if (!layer.weights.length) continue;
      const prefix = src.module(layer.name, layers);
      const s = prefix === undefined ? undefined : slotsOf(layer, prefix);
      if (!s) {
        unmapped.push(layer.name);
        continue;
      }
      s.forEach((slot, i) =>
        slots.push({ ...slot, variable: layer.weights[i].read() as tf.Variable, what: layer.weights[i].originalName }),
      );
    }
    if (unmapped.length) throw new Error(`@tricks/convert: no torch name for layers ${unmapped.join(', ')} of ${src.zoo}`);
    const used = new Set<string>();
    const missing: string[] = [];
    const misshapen: string[] = [];
    const skipped: ConvertReport['skipped'] = [];
    const load: [Slot, CheckpointTensor][] = [];
    for (const slot of slots) {
      const t = tensors.get(slot.key);
      if (!t) {
        missing.push(`${slot.key}: ${src.zoo}'s ${slot.what} needs ${shapeText(slot.torchShape)}`);
        skipped.push({ key: slot.key, reason: `missing from the file (${slot.what} keeps its initial values)` });
        continue;
      }
      used.add(slot.key);
      if (numel(t.shape) !== numel(slot.torchShape) || t.shape.some((n, i) => n !== slot.torchShape[i])) {
        const text = `${slot.key} is ${shapeText(t.shape)} in the file, ${src.zoo}'s ${slot.what} needs ${shapeText(slot.torchShape)}`;
        misshapen.push(text);
        skipped.push({
          key: slot.key,
          reason: `${shapeText(t.shape)} in the file, ${shapeText(slot.torchShape)} needed (${slot.what} keeps its initial values)`,
        });
        continue;
      }
      load.push([slot, t]);
    }
    const unexpected: string[] = [];
    for (const [key, t] of tensors) {
      if (used.has(key) || IGNORED.test(key)) continue;
      unexpected.push(`${key} ${shapeText(t.shape)}`);
      skipped.push({ key, reason: `not part of ${src.name} (${shapeText(t.shape)})` });
    }
    const problems = missing.length + misshapen.length + unexpected.length;
    if (strict && problems) {
      const guess = guessModel(tensors);
      const other = guess && sourceModel(guess) !== src ? guess : undefined;
      const headOnly =
        !missing.length &&
        !unexpected.length &&
        misshapen.every((l) => l.startsWith(src.head) || l.startsWith(src.head.replace('weight', 'bias')));
      const summary = [
        misshapen.length && `${misshapen.length} misshapen`,
        missing.length && `${missing.length} missing`,
        unexpected.length && `${unexpected.length} unexpected`,
      ]
        .filter(Boolean)
        .join(', ');
      throw new TricksError(
        [
          `${file}: its tensors do not fit ${src.name} (zoo ${src.zoo}): ${summary}${other ? `; it looks like a ${other} checkpoint` : ''}`,
          ...listed('misshapen', misshapen),
          ...listed('missing', missing),
          ...listed('unexpected', unexpected),
        ].join('\n'),
        other
          ? `convert it with --model ${other}; or --strict false to load the tensors that fit and list the rest`
          : headOnly
            ? `the file's classifier has ${headShape?.[0]} classes: drop --classes, or keep it with --strict false (a new classifier, initialized)`
            : (unmappedLayout(tensors) ?? '--strict false loads the tensors that fit and lists the rest'),
      );
    }
    for (const [slot, t] of load) {
      const values = slot.toZoo(t.values(), t.shape);
      slot.variable.assign(tf.tensor(values, slot.variable.shape, 'float32'));
    }
    const parameters = countParams(model);
    return {
      model,
      report: {
        file,
        format: ckpt.format,
        source: src.name,
        publisher: src.publisher,
        zoo: src.zoo,
        inputShape: [inputSize, inputSize, 3],
        numClasses,
        loaded: load.length,
        parameters,
        skipped,
        seconds: (performance.now() - t0) / 1000,
      },
    };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** The model.json metadata of a converted model: what it is and the input it expects. */
export function convertedMetadata(r: ConvertReport): Record<string, unknown> {
  return {
    tricks: {
      model: r.zoo,
      modelOptions: r.zoo === 'swin-t' ? {} : { padding: 'torch' },
      inputShape: r.inputShape,
      numClasses: r.numClasses,
      resize: { policy: 'resize-shorter-crop', cropPct: 0.875 },
      converted: {
        from: basename(r.file),
        format: r.format,
        source: `${r.publisher} ${r.source}`,
        loaded: r.loaded,
        skipped: r.skipped.map((s) => s.key),
      },
    },
    input: { layout: 'NHWC', dtype: 'float32', scale: 1 / 255, mean: IMAGENET_MEAN, std: IMAGENET_STD, text: INPUT_TEXT },
  };
}

/** Whether `dir` holds a model `tricks convert` wrote (its model.json's metadata has tricks.converted). */
function writtenByConvert(dir: string): boolean {
  try {
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    return Boolean(json?.userDefinedMetadata?.tricks?.converted);
  } catch {
    return false;
  }
}

/**
 * Convert writes only into a folder of its own: a missing or empty one, or one an earlier conversion wrote (which
 * it replaces). A file, a run folder or anything else that is not empty is refused before any work.
 */
export function claimConvertFolder(out: string): void {
  if (existsSync(out) && !statSync(out).isDirectory())
    throw new TricksError(`--out ${out} is a file, not a folder`, 'give --out a folder of its own for the converted model');
  if (!existsSync(out) || !readdirSync(out).length || writtenByConvert(out)) return;
  const entries = readdirSync(out);
  throw new TricksError(
    `--out ${out} is not empty and was not written by tricks convert (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''})`,
    'convert into a new or empty folder, e.g. --out models/resnet18 (an earlier conversion there is replaced)',
  );
}

/**
 * Reads, maps and writes: `out` gets model.json + weights.bin atomically, and only when everything succeeded.
 * `out` must be new, empty, or an earlier conversion's (claimConvertFolder).
 */
export async function convertFile(file: string, out: string, o: ConvertOptions): Promise<ConvertReport> {
  const t0 = performance.now();
  claimConvertFolder(out);
  const info = await stat(file).catch(() => undefined);
  if (info?.isDirectory()) throw new TricksError(`${file} is a folder, not a checkpoint file`, 'give the .pth, .pt or .safetensors file');
  const ckpt = await readCheckpoint(file);
  const { model, report } = convertCheckpoint(ckpt, o);
  try {
    await writeDirAtomic(out, (tmp) => saveModel(model, tmp, convertedMetadata(report)));
  } finally {
    model.dispose();
  }
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}
