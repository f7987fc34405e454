// Fashion-MNIST with 20% of the training labels flipped on purpose: how well noise-filter finds the
// flipped labels (precision/recall of the flagged set in the last report) and the test accuracy it gains.
// Run: node plugins/noise-filter/scripts/experiment.mjs [epochs] [maxItems] [seeds]
import { createTrainer, MemoryLogger } from '@tricks/core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const epochs = Number(process.argv[2] ?? 8);
const maxItems = Number(process.argv[3] ?? 6000);
const seeds = process.env.SEEDS
  ? process.env.SEEDS.split(',').map(Number)
  : Array.from({ length: Number(process.argv[4] ?? 3) }, (_, i) => i);
const filter = { warmup: 3, window: 2, threshold: 0.2 };
const variants = [
  ['baseline (no filter)', []],
  ['confidence (drop)', [['noise-filter', { ...filter, use: 'confidence' }]]],
  ['confidence or DBSCAN (drop)', [['noise-filter', { ...filter, use: 'either', dbscan: { minPts: 8, maxPerClass: 1000 } }]]],
];
const ms = (a) => {
  const m = a.reduce((x, y) => x + y, 0) / a.length;
  const s = a.length > 1 ? Math.sqrt(a.reduce((x, y) => x + (y - m) ** 2, 0) / (a.length - 1)) : 0;
  return `${(m * 100).toFixed(1)} ± ${(s * 100).toFixed(1)}`;
};
const only = process.env.VARIANTS?.split(',').map(Number); // run some variants only (indices), e.g. in parallel processes
const rows = [];
for (const [name, plugins] of variants.filter((_, i) => !only || only.includes(i))) {
  const acc = [],
    prec = [],
    rec = [],
    count = [];
  for (const seed of seeds) {
    const out = mkdtempSync(join(tmpdir(), 'nf-exp-'));
    const t0 = Date.now();
    const trainer = await createTrainer(
      {
        data: 'fashion-mnist-noisy',
        dataOptions: { noiseRate: 0.2, maxItems },
        model: { name: 'small-cnn', options: { width: 16 } },
        epochs,
        batchSize: 64,
        evalBatchSize: 1000,
        optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 5e-4 },
        schedule: { name: 'cosine' },
        seed,
        backend: 'wasm',
        checkpoint: false,
        export: { formats: [] },
        plugins,
        out,
      },
      { logger: new MemoryLogger() },
    );
    let noisy;
    trainer.hooks.setup.tapPromise('experiment', async (ctx) => {
      noisy = ctx.train.noisy;
    });
    const result = await trainer.run();
    acc.push(result.epochs.at(-1).val_top1);
    let line = '';
    if (plugins.length) {
      const report = JSON.parse(readFileSync(join(out, 'noise-report.json'), 'utf8'));
      const flagged = new Set(report.samples.map((s) => s.index));
      let tp = 0;
      for (const i of flagged) if (noisy.has(i)) tp++;
      prec.push(flagged.size ? tp / flagged.size : 0);
      rec.push(tp / noisy.size);
      count.push(flagged.size);
      line = `, flagged ${flagged.size} (precision ${(prec.at(-1) * 100).toFixed(1)}%, recall ${(rec.at(-1) * 100).toFixed(1)}% of ${noisy.size} flipped)`;
    }
    console.log(`${name} seed ${seed}: test acc ${(acc.at(-1) * 100).toFixed(2)}%${line}, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    rmSync(out, { recursive: true, force: true });
  }
  rows.push(
    `| ${name} | ${ms(acc)} | ${prec.length ? ms(prec) : '–'} | ${rec.length ? ms(rec) : '–'} | ${count.length ? Math.round(count.reduce((a, b) => a + b) / count.length) : '–'} |`,
  );
}
console.log(
  `\nFashion-MNIST, ${maxItems} training images with 20% labels flipped (symmetric), small-cnn width 16, ${epochs} epochs, seeds ${seeds.join(', ')}; filter ${JSON.stringify(filter)}`,
);
console.log('| variant | test accuracy % | precision % | recall % | flagged |\n|---|---|---|---|---|');
for (const r of rows) console.log(r);
