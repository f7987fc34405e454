import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Dataset } from '../data/dataset.js';
import { loadBatches } from '../data/loader.js';
import type { Batch } from '../hooks/hooks.js';
import { crossEntropy } from '../losses/cross-entropy.js';
import type { EvalResult } from './context.js';

/** uint8 NHWC + labels -> float32 [0,1] x and one-hot y. */
export function toBatch(
  raw: { images: Uint8Array; labels: Int32Array; indices: Int32Array },
  shape: [number, number, number],
  numClasses: number,
  epoch = 0,
  step = 0,
): Batch {
  const n = raw.labels.length;
  const f = new Float32Array(raw.images.length);
  for (let i = 0; i < f.length; i++) f[i] = raw.images[i] / 255;
  const x = tf.tensor4d(f, [n, ...shape]);
  const y = tf.cast(tf.oneHot(tf.tensor1d(raw.labels, 'int32'), numClasses), 'float32') as tf.Tensor2D;
  return { x, y, meta: { indices: raw.indices, labels: raw.labels, epoch, step } };
}

/** Loss, top-1, top-5 and the confusion matrix of a model on a dataset; `transform` is the evalBatch pipeline. */
export async function evaluateModel(
  model: LayersModel,
  data: Dataset,
  batchSize: number,
  transform: (b: Batch) => Batch = (b) => b,
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
    const [lossT, topT] = tf.tidy(() => {
      const batch = transform(toBatch(raw, data.shape, k));
      // predict, not apply: it frees each layer's output once the layers that read it have run
      const logits = model.predict(batch.x, { batchSize: n }) as tf.Tensor2D;
      return [tf.mul(crossEntropy(logits, batch.y), n), tf.topk(logits, kk).indices];
    });
    lossSum += (await lossT.data())[0];
    const top = await topT.data();
    tf.dispose([lossT, topT]);
    for (let i = 0; i < n; i++) {
      const label = raw.labels[i];
      const pred = top[i * kk];
      confusion[label][pred]++;
      if (pred === label) top1++;
      for (let j = 0; j < kk; j++)
        if (top[i * kk + j] === label) {
          top5++;
          break;
        }
    }
    count += n;
  }
  return { loss: lossSum / count, top1: top1 / count, top5: top5 / count, confusion, count };
}
