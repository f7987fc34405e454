import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ContainerModule } from 'inversify';
import {
  definePlugin,
  epochRng,
  STAGE_DATA,
  STAGE_LOSS,
  TOKENS,
  type Batch,
  type Dataset,
  type LossState,
  type PluginState,
  type Sampler,
  type TrainContext,
} from '@tricks/core';

export const PLUGIN_NAME = 'class-balance';
/** Before label smoothing (STAGE_LOSS - 10), so weights come from the unsmoothed (possibly mixed) targets. */
export const STAGE_WEIGHTS = STAGE_LOSS - 20;
/** SMOTE works on the raw images, before augmentation. */
export const STAGE_SMOTE = STAGE_DATA + 10;

export interface ClassBalanceOptions {
  /** loss: class-weighted loss; resample: class-balanced sampler; smote: the sampler plus SMOTE interpolation of repeated rare items. */
  strategy: 'loss' | 'resample' | 'smote';
  /** Weights/sampling ∝ n_c^-power (1: inverse frequency; 0.5: inverse square root). */
  power: number;
  /** SMOTE: neighbours per item. */
  k: number;
  /** SMOTE: neighbours found in pixel space, or in the model's penultimate-layer embedding (refreshed each epoch). */
  space: 'pixel' | 'embedding';
  /** SMOTE: at most this many items per class in the neighbour search. */
  maxPool: number;
}

export function classCounts(labels: Int32Array, k: number): number[] {
  const n = new Array(k).fill(0);
  for (const l of labels) n[l]++;
  return n;
}

/** w_c = n_c^-power, scaled so the mean weight over training samples is 1 (sklearn's 'balanced' for power 1). Absent classes get 0. */
export function classWeights(counts: number[], power = 1): number[] {
  const raw = counts.map((n) => (n > 0 ? Math.pow(n, -power) : 0));
  const total = counts.reduce((a, b) => a + b, 0);
  const mean = counts.reduce((a, n, c) => a + n * raw[c], 0) / total;
  return raw.map((w) => w / mean);
}

/** Draws each epoch's items with replacement: a class with probability ∝ n_c^(1-power), then one of its items. */
export class ClassBalancedSampler implements Sampler {
  constructor(readonly power = 1) {}
  epochIndices(dataset: Dataset, epoch: number, seed: number): Int32Array {
    const rng = epochRng(seed, epoch);
    const byClass: number[][] = Array.from({ length: dataset.numClasses }, () => []);
    dataset.labels.forEach((l, i) => byClass[l].push(i));
    const p = byClass.map((idx) => (idx.length ? Math.pow(idx.length, 1 - this.power) : 0));
    const total = p.reduce((a, b) => a + b, 0);
    const cum: number[] = [];
    p.reduce((a, v, i) => (cum[i] = a + v / total), 0);
    const out = new Int32Array(dataset.length);
    for (let i = 0; i < out.length; i++) {
      const u = rng.next();
      let c = cum.findIndex((v) => u < v);
      if (c < 0) for (let j = byClass.length - 1; j >= 0 && c < 0; j--) if (byClass[j].length) c = j;
      out[i] = byClass[c][rng.int(byClass[c].length)];
    }
    return out;
  }
}

/** Weighted loss: sampleWeights = targets · w (soft targets from mixup get the mixed weight), times any weights set before. */
export function weightLoss(state: LossState, w: tf.Tensor1D): LossState {
  const sw = tf.squeeze(tf.matMul(state.targets, tf.reshape(w, [-1, 1])), [1]) as tf.Tensor1D;
  const prev = state.sampleWeights;
  return { ...state, sampleWeights: prev ? (tf.mul(prev, sw) as tf.Tensor1D) : sw };
}

/** The k nearest same-class neighbours (squared Euclidean) of every row of `feats` (n x d, host). */
export function nearestNeighbours(feats: Float32Array, n: number, d: number, k: number): Int32Array {
  const kk = Math.min(k, n - 1);
  const out = new Int32Array(n * Math.max(kk, 0));
  if (kk <= 0) return out;
  const dist = tf.tidy(() => {
    const x = tf.tensor2d(feats, [n, d]);
    const sq = tf.sum(tf.square(x), 1, true);
    return tf.add(tf.sub(sq, tf.mul(2, tf.matMul(x, x, false, true))), tf.transpose(sq)).dataSync();
  });
  const row = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) row[j] = j;
    row.sort((a, b) => (a === i ? 1 : b === i ? -1 : dist[i * n + a] - dist[i * n + b]));
    for (let t = 0; t < kk; t++) out[i * kk + t] = row[t];
  }
  return out;
}

/** SMOTE state: per class, the pool of item indices, their images (float, host) and each one's neighbours. */
interface Pool {
  items: number[];
  pos: Map<number, number>;
  images: Float32Array;
  nn: Int32Array;
  k: number;
}

/** A pool as checkpoints keep it: the item indices and neighbours (the images are read from the dataset again). */
export interface SavedPool {
  items: number[];
  nn: number[];
  k: number;
}

export class Smote {
  pools: (Pool | null)[] = [];
  /** Probability that a drawn item of class c is replaced by a synthetic one: 1 - n_c / n_max. */
  replaceProb: number[] = [];
  constructor(readonly o: ClassBalanceOptions) {}

  async build(train: Dataset, rng: { int(n: number): number }, embed?: (x: tf.Tensor4D) => tf.Tensor2D): Promise<void> {
    const counts = classCounts(train.labels, train.numClasses);
    const max = Math.max(...counts);
    this.replaceProb = counts.map((n) => (n > 0 ? 1 - n / max : 0));
    const size = train.shape[0] * train.shape[1] * train.shape[2];
    this.pools = [];
    for (let c = 0; c < train.numClasses; c++) {
      if (this.replaceProb[c] <= 0 || counts[c] < 2) {
        this.pools.push(null);
        continue;
      }
      const all: number[] = [];
      train.labels.forEach((l, i) => {
        if (l === c) all.push(i);
      });
      while (all.length > this.o.maxPool) all.splice(rng.int(all.length), 1);
      const raw = await train.getBatch(all);
      const images = Float32Array.from(raw.images, (v) => v / 255);
      let feats: Float32Array = images,
        d = size;
      if (embed) {
        const e = tf.tidy(() => embed(tf.tensor4d(images, [all.length, ...train.shape])));
        d = e.shape[1];
        feats = e.dataSync() as Float32Array;
        e.dispose();
      }
      const k = Math.min(this.o.k, all.length - 1);
      this.pools.push({ items: all, pos: new Map(all.map((v, i) => [v, i])), images, nn: nearestNeighbours(feats, all.length, d, k), k });
    }
  }

  /** The pools without their images, for a checkpoint. */
  save(): { replaceProb: number[]; pools: (SavedPool | null)[] } {
    return { replaceProb: this.replaceProb, pools: this.pools.map((p) => (p ? { items: p.items, nn: Array.from(p.nn), k: p.k } : null)) };
  }

  /** Restores saved pools, reading their images from `train` again. */
  async load(s: { replaceProb: number[]; pools: (SavedPool | null)[] }, train: Dataset): Promise<void> {
    this.replaceProb = s.replaceProb;
    this.pools = [];
    for (const p of s.pools) {
      if (!p) {
        this.pools.push(null);
        continue;
      }
      const raw = await train.getBatch(p.items);
      this.pools.push({
        items: p.items,
        pos: new Map(p.items.map((v, i) => [v, i])),
        images: Float32Array.from(raw.images, (v) => v / 255),
        nn: Int32Array.from(p.nn),
        k: p.k,
      });
    }
  }

  /** Replaces rare-class rows with x_i + u (x_nn - x_i), u ~ U(0, 1), nn one of x_i's k nearest same-class neighbours. */
  apply(batch: Batch, rng: { next(): number; int(n: number): number }): Batch {
    const [b, h, w, ch] = batch.x.shape;
    const size = h * w * ch;
    const partner = new Float32Array(b * size);
    const u = new Float32Array(b);
    let any = false;
    const x = batch.x.dataSync();
    for (let i = 0; i < b; i++) {
      const c = batch.meta.labels[i];
      const pool = this.pools[c];
      partner.set(x.subarray(i * size, (i + 1) * size), i * size);
      if (!pool || rng.next() >= this.replaceProb[c]) continue;
      let p = pool.pos.get(batch.meta.indices[i]);
      if (p === undefined) p = rng.int(pool.items.length); // an item outside the capped pool: start from a pool item
      const src = pool.images.subarray(p * size, (p + 1) * size);
      const nb = pool.nn[p * pool.k + rng.int(pool.k)];
      const t = rng.next();
      for (let j = 0; j < size; j++) partner[i * size + j] = src[j] + t * (pool.images[nb * size + j] - src[j]);
      u[i] = 1;
      any = true;
    }
    if (!any) return batch;
    const m = tf.tensor4d(u, [b, 1, 1, 1]);
    const xs = tf.add(tf.mul(batch.x, tf.sub(1, m)), tf.mul(tf.tensor4d(partner, [b, h, w, ch]), m)) as tf.Tensor4D;
    return { ...batch, x: xs, meta: { ...batch.meta, smote: u } };
  }
}

/** The model's penultimate-layer output: the input of the last layer. */
export function penultimate(model: tfl.LayersModel): tfl.LayersModel {
  const last = model.layers[model.layers.length - 1];
  const input = last.input as tfl.SymbolicTensor;
  return tfl.model({ inputs: model.inputs, outputs: input });
}

export default definePlugin<ClassBalanceOptions>({
  name: PLUGIN_NAME,
  description:
    'class balancing for long-tailed data: class-weighted loss (1/freq, mean 1), class-balanced re-sampling (rebinds the Sampler), SMOTE-style interpolation of repeated rare items',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      strategy: { enum: ['loss', 'resample', 'smote'], default: 'loss' },
      power: { type: 'number', minimum: 0, maximum: 2, default: 1 },
      k: { type: 'integer', minimum: 1, maximum: 50, default: 5 },
      space: { enum: ['pixel', 'embedding'], default: 'pixel' },
      maxPool: { type: 'integer', minimum: 2, maximum: 20000, default: 2000 },
    },
  },
  modules(options) {
    if (options.strategy === 'loss') return [];
    return [
      new ContainerModule(({ rebind }) => {
        rebind(TOKENS.Sampler).toConstantValue(new ClassBalancedSampler(options.power));
      }),
    ];
  },
  apply(api, options) {
    let weights: tf.Tensor1D | undefined;
    let train: Dataset | undefined;
    const smote = new Smote(options);
    api.hooks.setup.tapPromise(PLUGIN_NAME, async (ctx: TrainContext) => {
      train = ctx.train;
      const counts = classCounts(ctx.train.labels, ctx.numClasses);
      if (options.strategy === 'loss') {
        weights?.dispose();
        weights = tf.keep(tf.tensor1d(classWeights(counts, options.power)));
        ctx.logger.info(
          `class-balance: class weights ${classWeights(counts, options.power)
            .map((w) => w.toFixed(2))
            .join(' ')} (counts ${counts.join(' ')})`,
        );
      }
      if (options.strategy === 'smote') await smote.build(ctx.train, ctx.rng.fork(0x5307e));
    });
    if (options.strategy === 'loss') {
      api.hooks.loss.tap({ name: PLUGIN_NAME, stage: STAGE_WEIGHTS }, (state) => weightLoss(state, weights!));
    }
    // every exit, not only success: free the class weights
    api.hooks.teardown.tapPromise(PLUGIN_NAME, async () => {
      weights?.dispose();
      weights = undefined;
    });
    if (options.strategy === 'smote') {
      api.hooks.batch.tap({ name: PLUGIN_NAME, stage: STAGE_SMOTE }, (batch, ctx) => smote.apply(batch, ctx.rng));
      if (options.space === 'embedding') {
        api.hooks.epoch.tapPromise(PLUGIN_NAME, async (ctx) => {
          const emb = penultimate(ctx.model);
          // the eval pipeline (normalize) first, as the model saw its inputs
          const prep = (x: tf.Tensor4D) =>
            ctx.evalTransform({
              x,
              y: tf.zeros([x.shape[0], ctx.numClasses]) as tf.Tensor2D,
              meta: { indices: new Int32Array(x.shape[0]), labels: new Int32Array(x.shape[0]), epoch: ctx.epoch, step: ctx.step },
            }).x;
          await smote.build(ctx.train, ctx.rng.fork(0x5307e), (x) => emb.predict(prep(x)) as tf.Tensor2D);
        });
      }
    }
    // the class weights and the SMOTE pools (rebuilt from embeddings each epoch) go into checkpoints
    const state: PluginState = {
      save: () => ({ json: { smote: options.strategy === 'smote' ? smote.save() : null }, tensors: weights ? { weights } : undefined }),
      load: async (s) => {
        const w = s.tensors?.weights;
        if (w) {
          weights?.dispose();
          weights = tf.keep(tf.clone(w)) as tf.Tensor1D;
        }
        const saved = (s.json as { smote: ReturnType<Smote['save']> | null } | undefined)?.smote;
        if (saved && train) await smote.load(saved, train);
      },
    };
    return { state };
  },
});
