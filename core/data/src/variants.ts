import { InMemoryDataset, type DataSplit, type DataOptions } from '@tricks/core';
import { loadIdxDataset } from './idx.js';

/**
 * Dataset variants for the class-balance and noise-filter experiments: a long-tailed subset (exponential
 * profile, Cui et al. 2019: n_c = n_max * ratio^(-c/(K-1))) and a copy with a fraction of labels flipped
 * to another class on purpose (the flipped indices are kept, to score a noise detector).
 */
export function longTailSubset(ds: InMemoryDataset, ratio: number, maxPerClass: number, seed = 7): InMemoryDataset {
  let s = seed >>> 0;
  const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  const k = ds.numClasses;
  const picked: number[] = [];
  for (let c = 0; c < k; c++) {
    const idx: number[] = [];
    ds.labels.forEach((l, i) => {
      if (l === c) idx.push(i);
    });
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    const n = Math.max(1, Math.round(Math.min(maxPerClass, idx.length) * Math.pow(ratio, -c / (k - 1))));
    picked.push(...idx.slice(0, n));
  }
  picked.sort((a, b) => a - b);
  return ds.subset(picked, `${ds.name}-lt${ratio}`);
}

export class NoisyLabelDataset extends InMemoryDataset {
  /** Indices whose label was flipped, and their true labels. */
  noisy = new Map<number, number>();
}

/** Flips `rate` of the labels, each to a uniformly chosen other class (symmetric noise). */
export function flipLabels(ds: InMemoryDataset, rate: number, seed = 11): NoisyLabelDataset {
  let s = seed >>> 0;
  const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  const labels = Int32Array.from(ds.labels);
  const out = new NoisyLabelDataset(`${ds.name}-noisy${rate}`, ds.images, labels, ds.shape, ds.numClasses, ds.classNames);
  const order = Array.from({ length: labels.length }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  for (const i of order.slice(0, Math.round(rate * labels.length))) {
    const shift = 1 + Math.floor(rand() * (ds.numClasses - 1));
    out.noisy.set(i, labels[i]);
    labels[i] = (labels[i] + shift) % ds.numClasses;
  }
  return out;
}

/** fashion-mnist-lt[:DIR]: long-tailed training subset (dataOptions.imbalanceRatio, default 100; maxPerClass, default 6000), full test set. */
export function loadFashionLongTail(dir: string | undefined, o: DataOptions): DataSplit {
  const base = loadIdxDataset('fashion-mnist', dir);
  const ratio = Number(o.imbalanceRatio ?? 100),
    max = Number(o.maxPerClass ?? 6000);
  return {
    train: longTailSubset(base.train as InMemoryDataset, ratio, max),
    val: base.val,
    source: `${base.source} long-tailed (ratio ${ratio}, at most ${max} per class)`,
  };
}

/** fashion-mnist-noisy[:DIR]: training labels flipped at dataOptions.noiseRate (default 0.2); dataOptions.maxItems caps the training set. */
export function loadFashionNoisy(dir: string | undefined, o: DataOptions): DataSplit {
  const base = loadIdxDataset('fashion-mnist', dir);
  const max = Number(o.maxItems ?? 60000);
  let train = base.train as InMemoryDataset;
  if (max < train.length) train = train.subset(Array.from({ length: max }, (_, i) => i));
  const rate = Number(o.noiseRate ?? 0.2);
  return {
    train: flipLabels(train, rate),
    val: base.val,
    source: `${base.source} with ${rate * 100}% of ${train.length} training labels flipped`,
  };
}
