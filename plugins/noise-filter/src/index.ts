import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import clustering from 'density-clustering';
import { join } from 'node:path';
import { definePlugin, STAGE_LOSS, writeFileAtomic, type LossState, type PluginState, type TrainContext } from '@tricks/core';

export const PLUGIN_NAME = 'noise-filter';
/** The loss hook's weights phase (with class-balance, whose weights multiply in), before label smoothing. */
export const STAGE = STAGE_LOSS - 30;

export interface NoiseFilterOptions {
  /** Epochs of plain training before anything is filtered. */
  warmup: number;
  /** A sample is suspect when its predicted probability for its own label is below this... */
  threshold: number;
  /** ...in each of its last `window` epochs. */
  window: number;
  /** drop: weight 0; downweight: weight `weight`. */
  action: 'drop' | 'downweight';
  weight: number;
  /** DBSCAN outliers per class on penultimate-layer embeddings, after warm-up; null: off. */
  dbscan: { eps: number | null; minPts: number; maxPerClass: number } | null;
  /** What flags a sample: confidence, DBSCAN, or either. */
  use: 'confidence' | 'dbscan' | 'either' | 'both';
}

export interface FlaggedSample {
  index: number;
  label: number;
  /** Mean probability of its own label over the window (confidence), or NaN. */
  score: number;
  reasons: string[];
}

/** Per-sample mean probability of the own label, per epoch (the training-mode predictions of each step). */
export class ConfidenceTracker {
  /** history[e] = Float32Array of mean p(own label) seen in epoch e (NaN: not seen). */
  history: Float32Array[] = [];
  sum?: Float64Array;
  count?: Uint32Array;

  constructor(readonly size: number) {}

  record(indices: Int32Array, probs: Float32Array | Int32Array | Uint8Array): void {
    this.sum ??= new Float64Array(this.size);
    this.count ??= new Uint32Array(this.size);
    for (let i = 0; i < indices.length; i++) {
      this.sum[indices[i]] += probs[i];
      this.count[indices[i]]++;
    }
  }

  endEpoch(): void {
    const h = new Float32Array(this.size).fill(NaN);
    if (this.sum && this.count) for (let i = 0; i < this.size; i++) if (this.count[i]) h[i] = this.sum[i] / this.count[i];
    this.history.push(h);
    this.sum = undefined;
    this.count = undefined;
  }

  /** Samples below threshold in each of the last `window` epochs in which they were seen; their mean score. */
  suspects(threshold: number, window: number): Map<number, number> {
    const out = new Map<number, number>();
    if (this.history.length < window) return out;
    const last = this.history.slice(-window);
    for (let i = 0; i < this.size; i++) {
      let all = true,
        s = 0,
        n = 0;
      for (const h of last) {
        if (Number.isNaN(h[i])) continue;
        if (h[i] >= threshold) {
          all = false;
          break;
        }
        s += h[i];
        n++;
      }
      if (all && n > 0) out.set(i, s / n);
    }
    return out;
  }
}

/** The model's penultimate-layer output (the input of its last layer). */
export function penultimate(model: tfl.LayersModel): tfl.LayersModel {
  const last = model.layers[model.layers.length - 1];
  return tfl.model({ inputs: model.inputs, outputs: last.input as tfl.SymbolicTensor });
}

/**
 * DBSCAN (the density-clustering package) on L2-normalized embeddings of one class; returns the positions
 * marked noise. eps null: the 90th percentile of each point's distance to its minPts-th neighbour.
 */
export function dbscanOutliers(
  emb: Float32Array,
  n: number,
  d: number,
  minPts: number,
  eps: number | null,
): { noise: number[]; eps: number } {
  if (n <= minPts) return { noise: [], eps: eps ?? 0 };
  const dist = tf.tidy(() => {
    const x = tf.tensor2d(emb, [n, d]);
    const u = tf.div(x, tf.maximum(tf.norm(x, 2, 1, true), 1e-12));
    const sq = tf.sum(tf.square(u), 1, true);
    return tf.sqrt(tf.relu(tf.add(tf.sub(sq, tf.mul(2, tf.matMul(u, u, false, true))), tf.transpose(sq)))).dataSync();
  });
  let e = eps;
  if (e === null) {
    const kth: number[] = [];
    const row = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) row[j] = dist[i * n + j];
      row.sort();
      kth.push(row[Math.min(minPts, n - 1)]);
    }
    kth.sort((a, b) => a - b);
    e = kth[Math.floor(0.9 * (kth.length - 1))];
  }
  // points are their own indices; the distance looks them up in the matrix computed above
  const points = Array.from({ length: n }, (_, i) => [i]);
  const db = new clustering.DBSCAN();
  db.run(points, e, minPts, (p: number[], q: number[]) => dist[p[0] * n + q[0]]);
  return { noise: db.noise.slice(), eps: e };
}

export default definePlugin<NoiseFilterOptions>({
  name: PLUGIN_NAME,
  description:
    'noisy-label filtering: after warm-up, drop or down-weight samples whose own-label probability stays below a threshold, and/or DBSCAN outliers of penultimate embeddings; writes noise-report.json',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      warmup: { type: 'integer', minimum: 1, default: 2 },
      threshold: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.1 },
      window: { type: 'integer', minimum: 1, maximum: 20, default: 2 },
      action: { enum: ['drop', 'downweight'], default: 'drop' },
      weight: { type: 'number', minimum: 0, maximum: 1, default: 0.1 },
      dbscan: {
        anyOf: [
          { type: 'null' },
          {
            type: 'object',
            additionalProperties: false,
            properties: {
              eps: { type: ['number', 'null'], exclusiveMinimum: 0 },
              minPts: { type: 'integer', minimum: 2 },
              maxPerClass: { type: 'integer', minimum: 10 },
            },
          },
        ],
        default: null,
      },
      use: { enum: ['confidence', 'dbscan', 'either', 'both'], default: 'confidence' },
    },
  },
  apply(api, o) {
    let tracker: ConfidenceTracker | undefined;
    let weights: Float32Array | undefined; // per training index, 1 = kept
    let flagged: FlaggedSample[] = [];
    const factor = o.action === 'drop' ? 0 : o.weight;
    const dbOpts = o.dbscan ? { eps: o.dbscan.eps ?? null, minPts: o.dbscan.minPts ?? 5, maxPerClass: o.dbscan.maxPerClass ?? 1000 } : null;

    api.hooks.setup.tapPromise(PLUGIN_NAME, async (ctx: TrainContext) => {
      tracker = new ConfidenceTracker(ctx.train.length);
      weights = new Float32Array(ctx.train.length).fill(1);
      flagged = [];
    });

    api.hooks.loss.tap({ name: PLUGIN_NAME, stage: STAGE }, (state: LossState) => {
      const { indices, labels } = state.batch.meta;
      const p = tf.tidy(() => tf.sum(tf.mul(tf.softmax(state.logits), tf.oneHot(tf.tensor1d(labels, 'int32'), state.logits.shape[1])), 1));
      tracker!.record(indices, p.dataSync() as Float32Array);
      if (!flagged.length) return state;
      const w = tf.tensor1d(Float32Array.from(indices, (i) => weights![i]));
      const prev = state.sampleWeights;
      // the trainer's base loss (and weighted terms) use the weights
      return { ...state, sampleWeights: prev ? (tf.mul(prev, w) as tf.Tensor1D) : w };
    });

    api.hooks.epoch.tapPromise(PLUGIN_NAME, async (ctx) => {
      tracker!.endEpoch();
      if (ctx.epoch + 1 < o.warmup) return;
      const conf = o.use === 'dbscan' ? new Map<number, number>() : tracker!.suspects(o.threshold, o.window);
      const outliers = new Set<number>();
      if (dbOpts && o.use !== 'confidence') {
        const emb = penultimate(ctx.model);
        for (let c = 0; c < ctx.numClasses; c++) {
          let idx: number[] = [];
          ctx.train.labels.forEach((l, i) => {
            if (l === c) idx.push(i);
          });
          if (idx.length > dbOpts.maxPerClass) idx = idx.filter((_, k) => k % Math.ceil(idx.length / dbOpts.maxPerClass) === 0);
          const raw = await ctx.train.getBatch(idx);
          const e = tf.tidy(() => {
            const x = tf.div(tf.tensor4d(raw.images, [idx.length, ...ctx.train.shape]), 255) as tf.Tensor4D;
            const b = ctx.evalTransform({
              x,
              y: tf.zeros([idx.length, ctx.numClasses]) as tf.Tensor2D,
              meta: { indices: Int32Array.from(idx), labels: raw.labels, epoch: ctx.epoch, step: ctx.step },
            });
            return emb.predict(b.x) as tf.Tensor2D;
          });
          const { noise } = dbscanOutliers(e.dataSync() as Float32Array, idx.length, e.shape[1], dbOpts.minPts, dbOpts.eps);
          e.dispose();
          for (const k of noise) outliers.add(idx[k]);
        }
      }
      const chosen = new Set<number>();
      if (o.use === 'confidence') conf.forEach((_, i) => chosen.add(i));
      else if (o.use === 'dbscan') outliers.forEach((i) => chosen.add(i));
      else if (o.use === 'either') {
        conf.forEach((_, i) => chosen.add(i));
        outliers.forEach((i) => chosen.add(i));
      } else
        conf.forEach((_, i) => {
          if (outliers.has(i)) chosen.add(i);
        });
      weights!.fill(1);
      flagged = [...chosen]
        .sort((a, b) => a - b)
        .map((index) => {
          weights![index] = factor;
          const reasons = [conf.has(index) ? 'confidence' : '', outliers.has(index) ? 'dbscan' : ''].filter(Boolean);
          return { index, label: ctx.train.labels[index], score: conf.get(index) ?? Number.NaN, reasons };
        });
      ctx.logger.info(
        `noise-filter: epoch ${ctx.epoch + 1}: ${flagged.length} of ${ctx.train.length} samples ${o.action === 'drop' ? 'dropped' : `down-weighted to ${o.weight}`} (${conf.size} low-confidence, ${outliers.size} DBSCAN outliers)`,
      );
      await writeReport(ctx, flagged, o);
    });

    // What a resumed run needs to filter as the uninterrupted one: the confidence history, the running
    // sums of an interrupted epoch, the weights and the flagged samples.
    let written: tf.Tensor[] = [];
    api.hooks.teardown.tapPromise(PLUGIN_NAME, async () => {
      tf.dispose(written);
      written = [];
    });
    const state: PluginState = {
      save: () => {
        tf.dispose(written); // the previous checkpoint's tensors: written already
        const tensors: Record<string, tf.Tensor> = {};
        if (tracker?.history.length) tensors.history = tf.tensor2d(concat(tracker.history), [tracker.history.length, tracker.size]);
        if (weights) tensors.weights = tf.tensor1d(weights);
        written = Object.values(tensors);
        return {
          json: {
            flagged: flagged.map((f) => ({ ...f, score: Number.isNaN(f.score) ? null : f.score })),
            epochs: tracker?.history.length ?? 0,
            // the sums of an epoch that a signal interrupted (float64, kept exact in JSON)
            running: tracker?.sum && tracker.count ? { sum: Array.from(tracker.sum), count: Array.from(tracker.count) } : null,
          },
          tensors,
        };
      },
      load: (s) => {
        const j = s.json as {
          flagged: (Omit<FlaggedSample, 'score'> & { score: number | null })[];
          epochs: number;
          running: { sum: number[]; count: number[] } | null;
        };
        flagged = j.flagged.map((f) => ({ ...f, score: f.score ?? Number.NaN }));
        const t = s.tensors ?? {};
        if (tracker && t.history) {
          const h = t.history.dataSync() as Float32Array;
          tracker.history = Array.from({ length: j.epochs }, (_, e) => h.slice(e * tracker!.size, (e + 1) * tracker!.size));
        }
        if (tracker && j.running) {
          tracker.sum = Float64Array.from(j.running.sum);
          tracker.count = Uint32Array.from(j.running.count);
        }
        if (weights && t.weights) weights.set(t.weights.dataSync() as Float32Array);
      },
    };
    return { state };
  },
});

function concat(rows: Float32Array[]): Float32Array {
  const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of rows) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

async function writeReport(ctx: TrainContext, flagged: FlaggedSample[], o: NoiseFilterOptions): Promise<void> {
  const report = {
    epoch: ctx.epoch,
    options: o,
    count: flagged.length,
    of: ctx.train.length,
    samples: flagged.map((f) => ({ ...f, score: Number.isNaN(f.score) ? null : Number(f.score.toFixed(5)) })),
  };
  await writeFileAtomic(join(ctx.out, 'noise-report.json'), JSON.stringify(report, null, 1));
  const csv = [
    'index,label,score,reasons',
    ...flagged.map((f) => `${f.index},${f.label},${Number.isNaN(f.score) ? '' : f.score.toFixed(5)},${f.reasons.join('+')}`),
  ].join('\n');
  await writeFileAtomic(join(ctx.out, 'noise-report.csv'), `${csv}\n`);
}
