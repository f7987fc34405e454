import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Dataset } from '../data/dataset.js';
import { loadBatches } from '../data/loader.js';
import type { Batch } from '../hooks/hooks.js';
import type { DecodePlan, InferenceForward } from '../contract.js';
import { crossEntropy } from '../losses/cross-entropy.js';
import type { EvalResult } from './context.js';

/**
 * uint8 NHWC + labels -> float32 [0,1] x and one-hot y. With a DecodePlan: `pixels` maps u8 * scale[c] + offset[c]
 * in the same single pass instead of / 255 (a folded Normalize), and meta.decoded names who asked for what was done.
 * Rows a dataset already converted while decoding (RawBatch.floats, mapped by the same plan) are taken as they are.
 */
export function toBatch(
  raw: { images: Uint8Array; labels: Int32Array; indices: Int32Array; cropped?: boolean; floats?: Float32Array },
  shape: [number, number, number],
  numClasses: number,
  epoch = 0,
  step = 0,
  plan?: DecodePlan,
): Batch {
  const n = raw.labels.length;
  const u8 = raw.images;
  const px = plan?.pixels;
  // rows the dataset converted while decoding (mapped by the plan's pixels, which the loader passed it)
  const f = raw.floats ?? new Float32Array(u8.length);
  if (raw.floats) {
    // nothing to convert
  } else if (px) {
    const c = shape[2];
    if (px.scale.length !== c || px.offset.length !== c)
      throw new Error(`toBatch: pixels has ${px.scale.length} scales and ${px.offset.length} offsets for ${c} channels`);
    if (c === 3) {
      const [s0, s1, s2] = px.scale,
        [o0, o1, o2] = px.offset;
      for (let i = 0; i < f.length; i += 3) {
        f[i] = u8[i] * s0 + o0;
        f[i + 1] = u8[i + 1] * s1 + o1;
        f[i + 2] = u8[i + 2] * s2 + o2;
      }
    } else for (let i = 0; i < f.length; i++) f[i] = u8[i] * px.scale[i % c] + px.offset[i % c];
  } else for (let i = 0; i < f.length; i++) f[i] = u8[i] / 255;
  const x = tf.tensor4d(f, [n, ...shape]);
  const y = tf.cast(tf.oneHot(tf.tensor1d(raw.labels, 'int32'), numClasses), 'float32') as tf.Tensor2D;
  const meta: Batch['meta'] = { indices: raw.indices, labels: raw.labels, epoch, step };
  const cropped = raw.cropped && plan?.crop ? plan.crop.owner : undefined;
  if (cropped || px) meta.decoded = { ...(cropped ? { cropped } : {}), ...(px ? { pixels: px.owner } : {}) };
  return { x, y, meta };
}

/** TOKENS.Inference's default: predict, not apply, frees each layer's output once the layers that read it have run. */
export const defaultInference = (model: LayersModel, x: tf.Tensor4D): tf.Tensor2D =>
  model.predict(x, { batchSize: x.shape[0] }) as tf.Tensor2D;

/** Loss, top-1, top-5 and the confusion matrix of a model on a dataset; `transform` is the evalBatch pipeline. */
export async function evaluateModel(
  model: LayersModel,
  data: Dataset,
  batchSize: number,
  transform: (b: Batch) => Batch = (b) => b,
  predict: InferenceForward = defaultInference,
): Promise<EvalResult> {
  const k = data.numClasses;
  const kk = Math.min(5, k);
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let lossSum = 0,
    top1 = 0,
    top5 = 0,
    count = 0;
  const all = Int32Array.from({ length: data.length }, (_, i) => i);
  for await (const raw of loadBatches(data, all, batchSize)) {
    const n = raw.labels.length;
    const batch = tf.tidy(() => transform(toBatch(raw, data.shape, k)) as unknown as tf.TensorContainer) as unknown as Batch;
    const logits = await predict(model, batch.x);
    const [lossT, topT] = tf.tidy(() => [tf.mul(crossEntropy(logits, batch.y), n), tf.topk(logits, kk).indices]);
    tf.dispose([batch as unknown as tf.TensorContainer, logits]);
    lossSum += (await lossT.data())[0];
    const top = await topT.data();
    tf.dispose([lossT, topT]);
    for (let i = 0; i < n; i++) {
      const label = raw.labels[i];
      const pred = top[i * kk];
      confusion[label][pred]++;
      if (pred === label) top1++;
      if (top.subarray(i * kk, (i + 1) * kk).includes(label)) top5++;
    }
    count += n;
  }
  return { loss: lossSum / count, top1: top1 / count, top5: top5 / count, confusion, count };
}
