/**
 * tfjs LayersModel artifacts: float32, float16 weights and uint8 affine weights. The two compressed forms use
 * the weights manifest's own `quantization` entries ({dtype: 'float16'} or {dtype: 'uint8', min, scale}),
 * which plain tfjs's loader dequantizes, so they load with `tf.loadLayersModel` and no code of ours.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { writeDirAtomic, writeFileAtomic } from '@tricks/core';
import { PREPROCESS_LAYER } from './deploy.js';

export const TFJS_FORMATS = ['tfjs', 'tfjs-fp16', 'tfjs-uint8'] as const;
export type TfjsFormat = (typeof TFJS_FORMATS)[number];

/** What model.save hands an IOHandler: topology, weight specs and bytes. */
export async function modelArtifacts(model: LayersModel): Promise<tf.io.ModelArtifacts> {
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save({
    save: async (a: tf.io.ModelArtifacts) => {
      captured = a;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) };
    },
  });
  return captured!;
}

/** IEEE 754 half from a float32 (round to nearest even), as the tfjs-converter writes float16 weights. */
export function toHalf(f: number): number {
  const buf = new DataView(new ArrayBuffer(4));
  buf.setFloat32(0, f);
  const x = buf.getUint32(0);
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

/**
 * uint8 affine weight quantization as the tfjs-converter does it: the range [min, max] is nudged so that 0 is
 * exactly representable, value = q * scale + min.
 */
export function quantizeUint8(values: Float32Array): { q: Uint8Array; min: number; scale: number } {
  let lo = Infinity,
    hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  lo = Math.min(lo, 0);
  hi = Math.max(hi, 0);
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  const zp = Math.round(-lo / scale);
  const min = -zp * scale;
  const q = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) q[i] = Math.max(0, Math.min(255, Math.round((values[i] - min) / scale)));
  return { q, min, scale };
}

/**
 * Re-encodes float32 weights: 'tfjs-fp16' stores every float weight as float16; 'tfjs-uint8' stores kernels
 * (rank >= 2) as uint8 with a per-tensor min and scale and keeps 1-D weights (biases, BatchNorm) in float32,
 * where 8 bits per tensor would cost accuracy for next to no bytes.
 */
export function encodeWeights(
  specs: tf.io.WeightsManifestEntry[],
  data: ArrayBuffer,
  format: TfjsFormat,
): { specs: tf.io.WeightsManifestEntry[]; data: Uint8Array } {
  const parts: Uint8Array[] = [];
  const out: tf.io.WeightsManifestEntry[] = [];
  let offset = 0;
  for (const spec of specs) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const bytes = n * 4;
    const raw = new Uint8Array(data, offset, bytes);
    offset += bytes;
    // the pixel preprocessing stays exact: 8 or 16 bits of 1/(255 std) would shift every input
    if (spec.dtype !== 'float32' || spec.quantization || format === 'tfjs' || spec.name.startsWith(`${PREPROCESS_LAYER}/`)) {
      parts.push(raw.slice());
      out.push(spec);
      continue;
    }
    const f = new Float32Array(raw.slice().buffer);
    if (format === 'tfjs-fp16') {
      const h = new Uint16Array(n);
      for (let i = 0; i < n; i++) h[i] = toHalf(f[i]);
      parts.push(new Uint8Array(h.buffer));
      out.push({ ...spec, quantization: { dtype: 'float16' } });
    } else if (spec.shape.length >= 2) {
      const { q, min, scale } = quantizeUint8(f);
      parts.push(q);
      out.push({ ...spec, quantization: { dtype: 'uint8', min, scale } });
    } else {
      parts.push(raw.slice());
      out.push(spec);
    }
  }
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const all = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.byteLength;
  }
  return { specs: out, data: all };
}

/**
 * Writes model.json + weights.bin in one of the tfjs formats, atomically (a temp dir, then a rename), with
 * `metadata` over the model's own and `extra` files (name -> content) beside them.
 */
export async function saveTfjs(
  model: LayersModel,
  dir: string,
  format: TfjsFormat,
  metadata?: Record<string, unknown>,
  extra: Record<string, string | Uint8Array> = {},
): Promise<string[]> {
  const a = await modelArtifacts(model);
  const data = a.weightData ? tf.io.CompositeArrayBuffer.join(a.weightData) : new ArrayBuffer(0);
  const enc = encodeWeights(a.weightSpecs ?? [], data, format);
  const json: tf.io.ModelJSON = {
    modelTopology: a.modelTopology!,
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
    convertedBy: `tricks export (${format})`,
    weightsManifest: [{ paths: ['./weights.bin'], weights: enc.specs }],
  };
  const meta = { ...((model.getUserDefinedMetadata() as Record<string, unknown>) ?? {}), ...(metadata ?? {}) };
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- tfjs's own type for the metadata
  if (Object.keys(meta).length) json.userDefinedMetadata = meta as { [key: string]: {} };
  await writeDirAtomic(dir, async (tmp) => {
    await writeFileAtomic(join(tmp, 'weights.bin'), enc.data);
    await writeFileAtomic(join(tmp, 'model.json'), JSON.stringify(json));
    for (const [name, data] of Object.entries(extra)) await writeFileAtomic(join(tmp, name), data);
  });
  return ['model.json', 'weights.bin', ...Object.keys(extra)];
}
