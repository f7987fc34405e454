import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Command } from 'commander';
import sharp from 'sharp';
import {
  type DataOptions,
  createHooks,
  STAGE_AUGMENT,
  tapOnly,
  type Batch,
  TricksError,
  MemoryLogger,
  type PluginItem,
  parsePluginFlag,
  resolveConfig,
  type TrainContext,
  Rng,
} from '@tricks/core';
import { cliServices } from './services.js';
import { addDataFlags, collect, dataOptionsFromFlags, type DataFlags } from './data-options.js';
import { int } from './flags.js';

export interface PreviewOptions {
  data: string;
  dataOptions?: DataOptions;
  preset?: string;
  plugins?: PluginItem[];
  /** Rows: samples. */
  rows?: number;
  /** Augmented versions per sample (columns after the original). */
  cols?: number;
  seed?: number;
  /** Pixels per image side in the grid (nearest-neighbour upscaling of small images). */
  cell?: number;
  out: string;
}

/**
 * Runs the batch hook of the configured plugins on a few training images, `cols` times, and writes a PNG grid:
 * one row per sample, the original first. Normalization (a tap at STAGE_AUGMENT + 50, as augment's) is undone
 * for display, measured from the batch just before and after that stage.
 */
export async function augmentPreview(o: PreviewOptions): Promise<{ file: string; width: number; height: number; plugins: string[] }> {
  if (!tf.findBackend('cpu') && !tf.findBackend('wasm')) await import('@tensorflow/tfjs-backend-cpu');
  await tf.ready();
  const resolution = await resolveConfig({ data: o.data, dataOptions: o.dataOptions ?? {}, preset: o.preset, plugins: o.plugins ?? [] });
  const hooks = createHooks();
  const facades = tapOnly(hooks);
  const { datasets, models } = await cliServices({
    user: { data: o.data, dataOptions: o.dataOptions ?? {}, preset: o.preset, plugins: o.plugins ?? [] },
  });
  for (const { definition, resolved } of resolution.plugins) {
    definition.apply({ hooks: facades, config: resolution.config, models, datasets, registerState() {} }, resolved.options);
  }
  const split = await datasets.create(o.data, o.dataOptions ?? {});
  const ds = split.train;
  const rows = o.rows ?? 6,
    cols = o.cols ?? 7;
  const rng = new Rng(o.seed ?? 0);
  const picks = Array.from(rng.permutation(ds.length).subarray(0, Math.min(rows, ds.length)));
  const raw = await ds.getBatch(picks);
  const [h, w, c] = ds.shape;
  const n = picks.length;
  const ctx = {
    config: resolution.config,
    hooks: facades,
    epoch: 0,
    step: 0,
    stepInEpoch: 0,
    stepsPerEpoch: 1,
    totalSteps: 1,
    lr: 0,
    rng,
    numClasses: ds.numClasses,
    inputShape: ds.shape,
    train: ds,
    val: split.val,
    metrics: [],
    logger: new MemoryLogger(),
    backend: tf.getBackend(),
    out: '.',
    lastTerms: {},
  } as unknown as TrainContext;
  // capture the batch just before and after the normalize stage, to undo it for display
  let before: Float32Array | undefined, after: Float32Array | undefined;
  hooks.batch.tap({ name: 'augment-preview:before-normalize', stage: STAGE_AUGMENT + 49 }, (b) => {
    before = b.x.dataSync() as Float32Array;
    return b;
  });
  hooks.batch.tap({ name: 'augment-preview:after-normalize', stage: STAGE_AUGMENT + 51 }, (b) => {
    after = b.x.dataSync() as Float32Array;
    return b;
  });
  const tiles: Float32Array[][] = picks.map(() => []);
  const original = Float32Array.from(raw.images, (v) => v / 255);
  const size = h * w * c;
  for (let i = 0; i < n; i++) tiles[i].push(original.subarray(i * size, (i + 1) * size));
  for (let k = 0; k < cols; k++) {
    ctx.step = k;
    const out = tf.tidy(() => {
      const batch: Batch = {
        x: tf.tensor4d(original, [n, h, w, c]),
        y: tf.cast(tf.oneHot(tf.tensor1d(raw.labels, 'int32'), ds.numClasses), 'float32') as tf.Tensor2D,
        meta: { indices: Int32Array.from(picks), labels: raw.labels, epoch: 0, step: k },
      };
      return hooks.batch.call(batch, ctx).x.dataSync() as Float32Array;
    });
    const inv = before && after ? channelAffineInverse(before, after, c) : null;
    for (let i = 0; i < n; i++) {
      const t = out.slice(i * size, (i + 1) * size);
      if (inv) for (let j = 0; j < size; j++) t[j] = t[j] * inv.scale[j % c] + inv.shift[j % c];
      tiles[i].push(t);
    }
  }
  const cell = o.cell ?? Math.max(h, Math.min(128, h * Math.max(1, Math.floor(96 / h))));
  const scale = Math.max(1, Math.floor(cell / h));
  const th = h * scale,
    tw = w * scale,
    gap = 2;
  const width = (cols + 1) * (tw + gap) + gap,
    height = n * (th + gap) + gap;
  const img = Buffer.alloc(width * height * 3, 255);
  tiles.forEach((row, r) =>
    row.forEach((tile, col) => {
      const oy = gap + r * (th + gap),
        ox = gap + col * (tw + gap);
      for (let y = 0; y < th; y++)
        for (let x = 0; x < tw; x++) {
          const src = (Math.floor(y / scale) * w + Math.floor(x / scale)) * c;
          const dst = ((oy + y) * width + ox + x) * 3;
          for (let k = 0; k < 3; k++) img[dst + k] = Math.max(0, Math.min(255, Math.round(tile[src + (c === 3 ? k : 0)] * 255)));
        }
    }),
  );
  const file = resolve(o.out);
  mkdirSync(dirname(file), { recursive: true });
  await sharp(img, { raw: { width, height, channels: 3 } })
    .png()
    .toFile(file);
  return { file, width, height, plugins: resolution.plugins.map((p) => p.definition.name) };
}

/** Per channel, the (scale, shift) that maps `after` back to `before` (after = (before - m) / s), from least squares. */
export function channelAffineInverse(before: Float32Array, after: Float32Array, c: number): { scale: number[]; shift: number[] } | null {
  const scale: number[] = [],
    shift: number[] = [];
  let identity = true;
  for (let k = 0; k < c; k++) {
    let sa = 0,
      sb = 0,
      saa = 0,
      sab = 0,
      n = 0;
    for (let j = k; j < before.length; j += c) {
      sa += after[j];
      sb += before[j];
      saa += after[j] * after[j];
      sab += after[j] * before[j];
      n++;
    }
    const va = saa / n - (sa / n) ** 2;
    const s = va > 1e-12 ? (sab / n - (sa / n) * (sb / n)) / va : 1;
    scale.push(s);
    shift.push(sb / n - s * (sa / n));
    if (Math.abs(s - 1) > 1e-6 || Math.abs(shift[k]) > 1e-6) identity = false;
  }
  return identity ? null : { scale, shift };
}

/** `tricks augment-preview --data SPEC [--preset P | --plugin ...] --out grid.png` */
export function registerAugmentPreviewCommand(program: Command): Command {
  const cmd = program
    .command('augment-preview')
    .description("write a PNG grid of augmented training samples: one row per sample, the original first, then the batch hook's output")
    .requiredOption('--data <spec>', 'dataset spec, as for train (digits, fashion-mnist, cifar10:DIR, folder:DIR, ...)');
  return addDataFlags(cmd)
    .option('--preset <name>', 'use the plugins of a preset')
    .option(
      '--plugin <name[=json]>',
      'a plugin with options as JSON, e.g. \'augment={"colorJitter":{"brightness":0.4}}\' (repeatable)',
      collect,
      [],
    )
    .option('--rows <n>', 'samples (rows)', int('--rows', 1), 6)
    .option('--cols <n>', 'augmented versions per sample', int('--cols', 1), 7)
    .option('--seed <n>', 'seed of the sample choice and of the augmentations', int('--seed'), 0)
    .option('--cell <px>', 'pixels per image side in the grid', int('--cell', 1))
    .requiredOption('--out <file.png>', 'the PNG to write')
    .action(
      async (
        f: DataFlags & {
          data: string;
          preset?: string;
          plugin: string[];
          rows: number;
          cols: number;
          seed: number;
          cell?: number;
          out: string;
        },
      ) => {
        for (const [k, v] of [
          ['--rows', f.rows],
          ['--cols', f.cols],
        ] as const) {
          if (!Number.isInteger(v) || v < 1 || v > 64) throw new TricksError(`option ${k}: ${v} is not an integer in 1..64`);
        }
        const dataOptions = dataOptionsFromFlags(f);
        const r = await augmentPreview({
          data: f.data,
          dataOptions,
          preset: f.preset,
          plugins: f.plugin.map(parsePluginFlag),
          rows: f.rows,
          cols: f.cols,
          seed: f.seed,
          cell: f.cell,
          out: f.out,
        });
        console.log(`wrote ${r.file} (${r.width}x${r.height}): ${r.plugins.length ? r.plugins.join(', ') : 'no plugins'}`);
      },
    );
}
