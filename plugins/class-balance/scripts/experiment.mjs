// Long-tailed Fashion-MNIST (imbalance ratio 100): balanced accuracy with and without class-balance,
// mean ± std over 3 seeds. The test set has 1000 images per class, so its top-1 is the balanced accuracy
// (mean per-class recall); we also compute it from the confusion matrix to be sure.
// Run: node plugins/class-balance/scripts/experiment.mjs [epochs] [maxPerClass]
import { createTrainer, MemoryLogger } from '@tricks/core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const epochs = Number(process.argv[2] ?? 6);
const maxPerClass = Number(process.argv[3] ?? 1000);
const seeds = (process.env.SEEDS ?? '0,1,2').split(',').map(Number);
const variants = [
  ['baseline', []],
  ['loss (1/freq weights)', [['class-balance', { strategy: 'loss' }]]],
  ['resample (balanced sampler)', [['class-balance', { strategy: 'resample' }]]],
  ['smote (sampler + pixel SMOTE)', [['class-balance', { strategy: 'smote' }]]],
];
const only = process.env.VARIANTS?.split(',').map(Number); // run some variants only (indices), e.g. in parallel processes
const rows = [];
for (const [name, plugins] of variants.filter((_, i) => !only || only.includes(i))) {
  const accs = [],
    minority = [];
  for (const seed of seeds) {
    const out = mkdtempSync(join(tmpdir(), 'cb-exp-'));
    const t0 = Date.now();
    const trainer = await createTrainer(
      {
        data: 'fashion-mnist-lt',
        dataOptions: { imbalanceRatio: 100, maxPerClass },
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
    let confusion;
    trainer.hooks.done.tapPromise('experiment', async (ctx) => {
      confusion = (await ctx.evaluate()).confusion;
    });
    const result = await trainer.run();
    const recall = confusion.map((row, c) => row[c] / row.reduce((a, b) => a + b, 0));
    const bal = recall.reduce((a, b) => a + b, 0) / recall.length;
    accs.push(bal);
    minority.push((recall[7] + recall[8] + recall[9]) / 3);
    console.log(
      `${name} seed ${seed}: balanced acc ${(bal * 100).toFixed(2)}% (val_top1 ${(result.epochs.at(-1).val_top1 * 100).toFixed(2)}%), 3 rarest classes ${(minority.at(-1) * 100).toFixed(1)}%, ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    );
    rmSync(out, { recursive: true, force: true });
  }
  const ms = (a) => {
    const m = a.reduce((x, y) => x + y, 0) / a.length;
    const s = Math.sqrt(a.reduce((x, y) => x + (y - m) ** 2, 0) / (a.length - 1));
    return `${(m * 100).toFixed(2)} ± ${(s * 100).toFixed(2)}`;
  };
  rows.push(`| ${name} | ${ms(accs)} | ${ms(minority)} |`);
}
console.log(
  `\nFashion-MNIST long-tailed (ratio 100, n_max ${maxPerClass}), small-cnn width 16, ${epochs} epochs, seeds ${seeds.join(', ')}`,
);
console.log('| variant | balanced accuracy % (mean ± std) | recall of the 3 rarest classes % |\n|---|---|---|');
for (const r of rows) console.log(r);
