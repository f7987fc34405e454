// Data pipeline throughput (images/s) against torchvision's DataLoader with the same transforms, in one run:
//  - CIFAR size: the CIFAR-10 binary loader + RandomCrop(32, padding 4) + flip + Normalize, batch 128;
//  - 224x224 JPEGs: the folder loader (sharp decode + resize, parallel, prefetch 2) + RandomResizedCrop(224)
//    + flip + Normalize, batch 64; torchvision: ImageFolder + the same transforms (PIL).
// The images are real: Fashion-MNIST, padded to 32x32 RGB for CIFAR, upscaled to 256x256 JPEGs for the
// folder (generated once with sharp into <tmpdir>/tricks-bench-pipeline-v1).
//
//   node core/bench/dist/src/pipeline.js [--jpegs 3000] [--epochs 2] [--rounds 2] [--before] [--readback]
//     [--only cifar|folder] [--no-write]
// Writes its section of docs/benchmarks.md between its own markers.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import sharp from 'sharp';
import { normalize, padCropFast, resizedCropFast, randomResizedCropBox } from '@tricks/helper-augment';
import { encodeCifarRecords, loadCifar, loadFolder, loadIdxDataset } from '@tricks/data';
import { type Dataset, type DecodePlan, loadBatches, ShuffleSampler, Rng, toBatch, validate } from '@tricks/core';
import augment, {
  augmentGeometryAndColour,
  augmentNormalizeAndErase,
  decideDecode,
  PLUGIN_NAME,
  resolvePipeline,
  STAGE_GEOMETRY,
  STAGE_NORMALIZE,
  type AugmentOptions,
} from '@tricks/plugin-augment';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..', '..');
const TORCH_SCRIPT = join(root, 'core', 'bench', 'src', 'pipeline_torch.py');
const PYTHON = process.env.TORCH_PYTHON ?? '/usr/bin/python3';

export interface PipelineRate {
  imagesPerSec: number;
  waitMsPerBatch: number;
  epochs: number[];
}

/**
 * The augment plugin's path as the trainer runs it, over `epochs` epochs: its DecodePlan for the dataset (crop at
 * decode when the dataset can, Normalize folded into the uint8 conversion when nothing needs [0, 1]), the loader
 * with 2 batches prefetched, core's toBatch, the plugin's two batch taps, the batch read back. Best epoch.
 */
export async function runAugment(
  dataset: Dataset,
  batchSize: number,
  epochs: number,
  opts: Partial<AugmentOptions> = {},
): Promise<PipelineRate> {
  const o: Record<string, unknown> = { ...opts };
  validate(augment.schema!, o, 'plugin augment', 'plugins.augment');
  const [h, w, c] = dataset.shape;
  const p = resolvePipeline(o as unknown as AugmentOptions, h, w, c);
  const owner = `${PLUGIN_NAME}#bench`;
  const batchTaps = [
    { name: PLUGIN_NAME, stage: STAGE_GEOMETRY },
    { name: PLUGIN_NAME, stage: STAGE_NORMALIZE },
  ];
  const rng = new Rng(1);
  const rates: number[] = [];
  let wait = 0,
    batches = 0;
  for (let e = 0; e < epochs; e++) {
    const d = decideDecode(p, { dataset, batchTaps }, {} as DecodePlan, owner, {
      decodeCrop: (o as unknown as AugmentOptions).decodeCrop,
      fold: (o as unknown as AugmentOptions).foldNormalize,
      tapName: PLUGIN_NAME,
      normalizeStage: STAGE_NORMALIZE,
    });
    const crop = d.plan.crop ? { crop: d.plan.crop.draw, seed: 1, epoch: e } : undefined;
    const idx = new ShuffleSampler().epochIndices(dataset, e, 1);
    const t0 = performance.now();
    let n = 0;
    for await (const b of loadBatches(dataset, idx, batchSize, { dropLast: true, prefetch: 2, crop })) {
      const out = tf.tidy(() => {
        const batch = toBatch(b, [h, w, c], dataset.numClasses, e, batches, d.plan);
        const x = augmentGeometryAndColour(batch.x, rng, p, batch.meta.decoded?.cropped === owner);
        return augmentNormalizeAndErase(x, rng, p, batch.meta.decoded?.pixels === owner ? d.fold : null);
      });
      await ready(out);
      out.dispose();
      n += b.labels.length;
      wait += b.waitMs;
      batches++;
    }
    rates.push(n / ((performance.now() - t0) / 1000));
  }
  return { imagesPerSec: Math.max(...rates), waitMsPerBatch: wait / batches, epochs: rates };
}

/** The path before crop-at-decode and the folded Normalize (issue 4's): loader, / 255, the batched transforms. Best epoch. */
export async function runOurs(
  dataset: Dataset,
  batchSize: number,
  epochs: number,
  transform: (x: tf.Tensor4D, rng: Rng) => tf.Tensor4D,
): Promise<PipelineRate> {
  const rng = new Rng(1);
  const [h, w, c] = dataset.shape;
  const rates: number[] = [];
  let wait = 0,
    batches = 0;
  for (let e = 0; e < epochs; e++) {
    const idx = new ShuffleSampler().epochIndices(dataset, e, 1);
    const t0 = performance.now();
    let n = 0;
    for await (const b of loadBatches(dataset, idx, batchSize, { dropLast: true, prefetch: 2 })) {
      const out = tf.tidy(() => transform(tf.div(tf.tensor4d(b.images, [b.labels.length, h, w, c], 'float32'), 255) as tf.Tensor4D, rng));
      await ready(out);
      out.dispose();
      n += b.labels.length;
      wait += b.waitMs;
      batches++;
    }
    rates.push(n / ((performance.now() - t0) / 1000));
  }
  return { imagesPerSec: Math.max(...rates), waitMsPerBatch: wait / batches, epochs: rates };
}

/**
 * Waits until the batch is computed on the backend, ready for the model (as torchvision's DataLoader hands over a
 * tensor): one element is read back, which an async backend can only give once the batch is done. `--readback`
 * copies the whole batch to the host instead (issue 4's definition: a fresh 38 MB array per 224-px batch, which
 * the trainer never makes).
 */
async function ready(out: tf.Tensor4D): Promise<void> {
  if (FULL_READBACK) await out.data();
  else {
    const one = tf.slice(out, [0, 0, 0, 0], [1, 1, 1, 1]);
    await one.data();
    one.dispose();
  }
}
const FULL_READBACK = process.argv.includes('--readback');

const MEAN = [0.485, 0.456, 0.406],
  STD = [0.229, 0.224, 0.225];

export function cifarTransform(x: tf.Tensor4D, rng: Rng): tf.Tensor4D {
  const n = x.shape[0];
  const offsets = Array.from({ length: n }, () => ({ top: rng.int(9), left: rng.int(9) }));
  const flips = Array.from({ length: n }, () => rng.next() < 0.5);
  return normalize(padCropFast(x, 4, offsets, flips), MEAN, STD);
}

export function imagenetTransform(x: tf.Tensor4D, rng: Rng): tf.Tensor4D {
  const [n, h, w] = x.shape;
  const boxes = Array.from({ length: n }, () => randomResizedCropBox(rng, h, w));
  const flips = Array.from({ length: n }, () => rng.next() < 0.5);
  return normalize(resizedCropFast(x, boxes, [224, 224], flips), MEAN, STD);
}

/** CIFAR-format files from Fashion-MNIST (padded to 32x32, grey replicated to RGB). */
export function makeCifarDir(dir: string, count: number): string {
  if (existsSync(join(dir, 'data_batch_1.bin'))) return dir;
  mkdirSync(dir, { recursive: true });
  const fm = loadIdxDataset('fashion-mnist', undefined).train;
  const n = Math.min(count, fm.length);
  const { images: src, labels } = (fm as unknown as { getBatchSync(i: number[]): { images: Uint8Array; labels: Int32Array } }).getBatchSync(
    Array.from({ length: n }, (_, i) => i),
  );
  const images = new Uint8Array(n * 3072);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < 28; y++)
      for (let x = 0; x < 28; x++) {
        const v = src[i * 784 + y * 28 + x];
        const o = i * 3072 + ((y + 2) * 32 + x + 2) * 3;
        images[o] = images[o + 1] = images[o + 2] = v;
      }
  writeFileSync(join(dir, 'data_batch_1.bin'), encodeCifarRecords(images, labels, 'cifar10'));
  writeFileSync(join(dir, 'test_batch.bin'), encodeCifarRecords(images.subarray(0, 3072 * 10), labels.subarray(0, 10), 'cifar10'));
  return dir;
}

/** `count` 256x256 JPEGs (quality 90) of Fashion-MNIST upscaled with sharp, in class folders. */
export async function makeJpegDir(dir: string, count: number): Promise<string> {
  const marker = join(dir, `.complete-${count}`);
  if (existsSync(marker)) return dir;
  const fm = loadIdxDataset('fashion-mnist', undefined).train as unknown as {
    getBatchSync(i: number[]): { images: Uint8Array; labels: Int32Array };
  };
  const { images, labels } = fm.getBatchSync(Array.from({ length: count }, (_, i) => i));
  for (let c = 0; c < 10; c++) mkdirSync(join(dir, `class${c}`), { recursive: true });
  for (let i = 0; i < count; i += 32) {
    await Promise.all(
      Array.from({ length: Math.min(32, count - i) }, (_, k) => {
        const j = i + k;
        return sharp(Buffer.from(images.subarray(j * 784, (j + 1) * 784)), { raw: { width: 28, height: 28, channels: 1 } })
          .resize(256, 256, { kernel: 'lanczos3' })
          .toColourspace('srgb')
          .jpeg({ quality: 90 })
          .toFile(join(dir, `class${labels[j]}`, `${j}.jpg`));
      }),
    );
  }
  writeFileSync(marker, '');
  return dir;
}

function torchRate(kind: 'cifar' | 'folder', path: string, batch: number, workers: number, epochs: number): { rate: number; line: string } {
  const r = spawnSync(PYTHON, [TORCH_SCRIPT, kind, path, String(batch), String(workers), String(epochs)], { encoding: 'utf8' });
  const m = /best ([0-9.]+) img\/s/.exec(r.stdout ?? '');
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (!m) return { rate: NaN, line: `failed: ${(r.stderr || '').trim().split('\n').pop()}` };
  return { rate: Number(m[1]), line };
}

interface Row {
  name: string;
  ours: PipelineRate;
  /** The batched path of before (issue 4's), when measured (--before). */
  before?: PipelineRate;
  torch: { workers: number; rate: number }[];
}

const best = (rates: PipelineRate[]): PipelineRate => rates.reduce((a, b) => (b.imagesPerSec > a.imagesPerSec ? b : a));

/** `rounds` rounds of ours, torchvision 0 and 2 workers (and the old path), alternating; the best of each. */
async function measure(
  name: string,
  rounds: number,
  ours: () => Promise<PipelineRate>,
  before: (() => Promise<PipelineRate>) | undefined,
  torch: (workers: number) => { rate: number; line: string },
): Promise<Row> {
  const o: PipelineRate[] = [],
    bf: PipelineRate[] = [];
  const t: Record<number, number[]> = { 0: [], 2: [] };
  for (let r = 0; r < rounds; r++) {
    o.push(await ours());
    for (const w of [0, 2]) t[w].push(torch(w).rate);
    if (before) bf.push(await before());
    console.log(
      `  round ${r + 1}: tricks ${o.at(-1)!.imagesPerSec.toFixed(0)}, torchvision 0/2 workers ${t[0].at(-1)!.toFixed(0)}/${t[2].at(-1)!.toFixed(0)}` +
        (before ? `, before ${bf.at(-1)!.imagesPerSec.toFixed(0)}` : '') +
        ` img/s (load ${loadavg()[0].toFixed(1)})`,
    );
  }
  return {
    name,
    ours: best(o),
    before: before ? best(bf) : undefined,
    torch: [0, 2].map((w) => ({ workers: w, rate: Math.max(...t[w].filter(Number.isFinite)) })),
  };
}

async function main() {
  const arg = (k: string, d: string) => {
    const i = process.argv.indexOf(k);
    return i >= 0 ? process.argv[i + 1] : d;
  };
  const jpegs = Number(arg('--jpegs', '3000'));
  const epochs = Number(arg('--epochs', '2'));
  const rounds = Number(arg('--rounds', '2'));
  const withBefore = process.argv.includes('--before');
  const only = arg('--only', 'all');
  await tf.setBackend('wasm');
  const base = join(tmpdir(), 'tricks-bench-pipeline-v1');
  const cifarDir = makeCifarDir(join(base, 'cifar'), 10000);
  const jpegDir = await makeJpegDir(join(base, `jpeg${jpegs}`), jpegs);
  const rows: Row[] = [];
  const load0 = loadavg()[0];

  if (only === 'all' || only === 'cifar') {
    const cifar = loadCifar('cifar10', cifarDir).train;
    const name = `CIFAR size (32x32, ${cifar.length} images, batch 128): RandomCrop(32, pad 4) + flip + Normalize`;
    console.log(name);
    rows.push(
      await measure(
        name,
        rounds,
        () => runAugment(cifar, 128, epochs),
        withBefore ? () => runOurs(cifar, 128, epochs, cifarTransform) : undefined,
        (w) => torchRate('cifar', join(cifarDir, 'data_batch_1.bin'), 128, w, epochs),
      ),
    );
    log(rows.at(-1)!);
  }

  if (only === 'all' || only === 'folder') {
    const folder = (await loadFolder(jpegDir, { size: 224, valSplit: 0, cache: false })).train;
    const name = `224x224 from ${folder.length} JPEGs of 256x256 (batch 64): decode + RandomResizedCrop(224) + flip + Normalize`;
    console.log(name);
    rows.push(
      await measure(
        name,
        rounds,
        () => runAugment(folder, 64, epochs),
        withBefore ? () => runOurs(folder, 64, epochs, imagenetTransform) : undefined,
        (w) => torchRate('folder', jpegDir, 64, w, epochs),
      ),
    );
    log(rows.at(-1)!);
  }

  if (!process.argv.includes('--no-write')) writeSection(rows, epochs, rounds, [load0, loadavg()[0]]);
}

function log(r: Row) {
  const top = Math.max(...r.torch.map((t) => t.rate));
  console.log(
    `  tricks (augment plugin's path): ${r.ours.imagesPerSec.toFixed(0)} img/s (epochs ${r.ours.epochs.map((v) => v.toFixed(0)).join(', ')}; mean wait for data ${r.ours.waitMsPerBatch.toFixed(1)} ms/batch)`,
  );
  if (r.before) console.log(`  tricks before (batched on the backend): ${r.before.imagesPerSec.toFixed(0)} img/s`);
  for (const t of r.torch) console.log(`  torchvision DataLoader, ${t.workers} workers: ${t.rate.toFixed(0)} img/s`);
  console.log(`  ratio vs best torchvision: ${(r.ours.imagesPerSec / top).toFixed(2)}x`);
}

function writeSection(rows: Row[], epochs: number, rounds: number, load: [number, number]) {
  const file = join(root, 'docs', 'benchmarks.md');
  const begin = '<!-- bench:pipeline begin (written by node core/bench/dist/src/pipeline.js) -->',
    end = '<!-- bench:pipeline end -->';
  const date = new Date().toISOString().slice(0, 10);
  const withBefore = rows.some((r) => r.before);
  const lines = [
    begin,
    `${date}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}, load average ${load[0].toFixed(1)} at the start, ${load[1].toFixed(1)} at the end;`,
    `${rounds} rounds alternating tricks and torchvision, ${epochs} epochs each, best epoch; all rows from one run.`,
    `tricks: the augment plugin's path as the trainer runs it (its DecodePlan: crop at decode when the dataset can, Normalize folded into the uint8 conversion; the loader with 2 batches prefetched; its batch taps on the wasm backend), ${FULL_READBACK ? 'the whole batch read back to the host (--readback)' : 'until the batch is ready on the backend (one element read back)'}.`,
    ...(withBefore
      ? ['tricks before: the batched transforms of issue 4 on the float batch (/ 255, crop, flip, Normalize on the backend).']
      : []),
    'torchvision 0.14: DataLoader(shuffle, drop_last) with the same transforms on PIL images, torch.set_num_threads(1).',
    '',
    `| workload | tricks img/s |${withBefore ? ' tricks before |' : ''} torchvision 0 workers | torchvision 2 workers | ratio vs best torchvision | tricks wait for data ms/batch |`,
    `|---|---|${withBefore ? '---|' : ''}---|---|---|---|`,
    ...rows.map((r) => {
      const top = Math.max(...r.torch.map((t) => t.rate));
      const tw = (w: number) => r.torch.find((t) => t.workers === w)?.rate.toFixed(0) ?? '-';
      const bf = withBefore ? ` ${r.before?.imagesPerSec.toFixed(0) ?? '-'} |` : '';
      return `| ${r.name} | ${r.ours.imagesPerSec.toFixed(0)} |${bf} ${tw(0)} | ${tw(2)} | ${(r.ours.imagesPerSec / top).toFixed(2)}x | ${r.ours.waitMsPerBatch.toFixed(1)} |`;
    }),
    end,
  ].join('\n');
  let doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\n';
  const i = doc.indexOf(begin),
    j = doc.indexOf(end);
  doc = i >= 0 && j > i ? doc.slice(0, i) + lines + doc.slice(j + end.length) : `${doc.trimEnd()}\n\n${lines}\n`;
  writeFileSync(`${file}.tmp`, doc);
  renameSync(`${file}.tmp`, file);
  console.log(`wrote ${file}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
