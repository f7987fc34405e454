import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { normalize, resizedCrop, resizedCropFast } from '@tricks/helper-augment';
import {
  InMemoryDataset,
  loadBatches,
  Rng,
  STAGE_DATA,
  toBatch,
  validate,
  type Batch,
  type Dataset,
  type DecodeCrop,
  type DecodePlan,
} from '@tricks/core';
import { loadFolder } from '@tricks/data';
import { assertNoLeak, assertParity, cleanup, interruptParity, resumeParity, runSteps } from '@tricks/helper-plugin-test-runner';
import plugin, {
  augmentGeometryAndColour,
  augmentNormalizeAndErase,
  decideDecode,
  decodeCropDraw,
  PLUGIN_NAME,
  resolvePipeline,
  STAGE_GEOMETRY,
  STAGE_NORMALIZE,
  type AugmentOptions,
} from '../src/index.js';

function options(o: Partial<AugmentOptions> = {}): AugmentOptions {
  const v: Record<string, unknown> = { ...o };
  validate(plugin.schema!, v, 'plugin augment', 'plugins.augment');
  return v as unknown as AugmentOptions;
}

const OUR_TAPS = [
  { name: PLUGIN_NAME, stage: STAGE_GEOMETRY },
  { name: PLUGIN_NAME, stage: STAGE_NORMALIZE },
];
const decide = (p: ReturnType<typeof resolvePipeline>, dataset: Dataset, taps = OUR_TAPS, plan: DecodePlan = {}) =>
  decideDecode(p, { dataset, batchTaps: taps }, plan, 'augment#t', {
    decodeCrop: true,
    fold: true,
    tapName: PLUGIN_NAME,
    normalizeStage: STAGE_NORMALIZE,
  });

/** Smooth RGB images of w x h (lossless PNG), different per index, in two class folders. */
async function photoFolder(root: string, count: number, w: number, h: number): Promise<void> {
  for (let c = 0; c < 2; c++) mkdirSync(join(root, `c${c}`), { recursive: true });
  for (let k = 0; k < count; k++) {
    const raw = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const o = (y * w + x) * 3;
        raw[o] = (x * 5 + k * 17) & 255;
        raw[o + 1] = (y * 3 + k * 29) & 255;
        raw[o + 2] = ((x * y) / 7 + k * 3) & 255;
      }
    await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
      .png()
      .toFile(join(root, `c${k % 2}`, `img${k}.png`));
  }
}

describe('augment: crop at decode time and the folded Normalize (decode hook)', function () {
  this.timeout(60000);
  let dir: string;
  before(async () => {
    await tf.setBackend('wasm');
    dir = mkdtempSync(join(tmpdir(), 'tricks-augment-decode-'));
    await photoFolder(dir, 8, 52, 40);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('equals the batched crop of the same box: resizedCrop to 1e-5, the one-kernel fast path within its outer-ring tolerance', async () => {
    const size = 24;
    const cropped: Dataset = (await loadFolder(dir, { size, valSplit: 0, cache: false })).train;
    const whole = (await loadFolder(dir, { size: [40, 52], valSplit: 0, cache: false })).train;
    expect(cropped.decodeCrop).to.equal(true);
    const n = cropped.length;
    const idx = Int32Array.from({ length: n }, (_, i) => i);
    // boxes that upscale, downscale, touch the borders, and flips
    const boxes: DecodeCrop[] = [
      { top: 0, left: 0, height: 40, width: 52, flip: false },
      { top: 3, left: 7, height: 12, width: 15, flip: true },
      { top: 10, left: 20, height: 30, width: 32, flip: false },
      { top: 0, left: 30, height: 22, width: 22, flip: true },
      { top: 39, left: 51, height: 1, width: 1, flip: false },
      { top: 5, left: 1, height: 35, width: 9, flip: true },
      { top: 2, left: 2, height: 36, width: 48, flip: true },
      { top: 20, left: 0, height: 20, width: 52, flip: false },
    ];
    const seen: number[][] = [];
    const raw = await cropped.getBatch(idx, {
      crop: (k, h, w) => {
        seen.push([h, w]);
        return boxes[k];
      },
    });
    expect(raw.cropped).to.equal(true);
    expect(
      seen.every(([h, w]) => h === 40 && w === 52),
      'the draw sees the source size',
    ).to.equal(true);
    const full = await whole.getBatch(idx);
    tf.tidy(() => {
      const src = tf.div(tf.tensor4d(Float32Array.from(full.images), [n, 40, 52, 3]), 255) as tf.Tensor4D;
      const flips = boxes.map((b) => b.flip);
      const ours = tf.tensor4d(raw.floats!, [n, size, size, 3]);
      const exact = resizedCrop(src, boxes, [size, size], flips);
      expect(tf.max(tf.abs(tf.sub(ours, exact))).dataSync()[0]).to.be.below(1e-5);
      const fast = resizedCropFast(src, boxes, [size, size], flips);
      expect(tf.max(tf.abs(tf.sub(ours, fast))).dataSync()[0]).to.be.below(0.1);
    });
    // the same with a pixel map (a folded Normalize): x * 1/(255 std) - mean/std
    const mean = [0.485, 0.456, 0.406],
      std = [0.229, 0.224, 0.225];
    const mapped = await cropped.getBatch(idx, {
      crop: (k) => boxes[k],
      pixels: { scale: std.map((s) => 1 / (255 * s)), offset: mean.map((m, i) => -m / std[i]) },
    });
    tf.tidy(() => {
      const a = normalize(tf.tensor4d(raw.floats!, [n, size, size, 3]), mean, std);
      expect(tf.max(tf.abs(tf.sub(tf.tensor4d(mapped.floats!, [n, size, size, 3]), a))).dataSync()[0]).to.be.below(1e-5);
    });
  });

  it('draws RandomResizedCrop boxes on the source size with the seeded item generators: the same after a resume, whatever the prefetch', async () => {
    const ds = (await loadFolder(dir, { size: 16, valSplit: 0, cache: false })).train;
    const p = resolvePipeline(options({ preset: 'imagenet' }), 16, 16, 3);
    const d = decide(p, ds);
    expect(d.crop).to.equal(true);
    expect(d.fold).to.equal('normalized');
    const order = Int32Array.from([5, 2, 7, 0, 1, 3, 6, 4]);
    const draws: Record<string, string[]> = {};
    const run = async (key: string, from: number, prefetch: number, epoch = 0) => {
      const out: Float32Array[] = [];
      draws[key] = [];
      const draw = d.plan.crop!.draw;
      const crop = {
        crop: (h: number, w: number, rng: Rng) => {
          const c = draw(h, w, rng);
          draws[key].push(JSON.stringify(c));
          return c;
        },
        pixels: d.plan.pixels,
        seed: 7,
        epoch,
      };
      for await (const b of loadBatches(ds, order, 2, { from, prefetch, crop })) out.push(b.floats!.slice());
      return out;
    };
    const all = await run('all', 0, 2);
    const resumed = await run('resumed', 2, 1);
    const deep = await run('deep', 0, 4);
    expect(resumed).to.have.length(2);
    for (let b = 0; b < 2; b++) expect(Array.from(resumed[b])).to.deep.equal(Array.from(all[b + 2]));
    for (let b = 0; b < 4; b++) expect(Array.from(deep[b])).to.deep.equal(Array.from(all[b]));
    expect(new Set(draws.all).size, 'items get their own boxes').to.be.greaterThan(4);
    const other = await run('other', 0, 2, 1);
    expect(Array.from(other[0])).to.not.deep.equal(Array.from(all[0]));
    // the draw is torchvision's get_params on the source (40 x 52): area fraction and aspect in range, inside
    const rng = new Rng(3);
    const drawOf = decodeCropDraw(p);
    let flips = 0;
    for (let t = 0; t < 500; t++) {
      const c = drawOf(40, 52, rng);
      expect(c.top + c.height).to.be.at.most(40);
      expect(c.left + c.width).to.be.at.most(52);
      expect((c.height * c.width) / (40 * 52)).to.be.within(0.07, 1);
      if (c.flip) flips++;
    }
    expect(flips / 500).to.be.within(0.4, 0.6);
  });

  it('asks for the fold only when nothing before Normalize needs [0, 1]; pad-crop folds the scale alone, with the same result', () => {
    const ds = new InMemoryDataset(
      'm',
      new Uint8Array(4 * 8 * 8 * 3).map((_, i) => (i * 37) & 255),
      new Int32Array(4),
      [8, 8, 3],
      2,
    );
    expect((ds as Dataset).decodeCrop).to.equal(undefined);
    const cifar = resolvePipeline(options(), 8, 8, 3);
    const d = decide(cifar, ds);
    expect(d.crop, 'an in-memory dataset does not crop while decoding').to.equal(false);
    expect(d.fold).to.equal('scaled');
    expect(d.plan.pixels!.offset).to.deep.equal([0, 0, 0]);
    expect(decide(resolvePipeline(options({ colorJitter: { brightness: 0.4 } }), 8, 8, 3), ds).fold).to.equal(null);
    expect(decide(resolvePipeline(options({ rotate: 10 }), 8, 8, 3), ds).fold).to.equal(null);
    expect(decide(cifar, ds, [...OUR_TAPS, { name: 'autoaugment', stage: STAGE_GEOMETRY + 10 }]).fold, 'AutoAugment taps between').to.equal(
      null,
    );
    expect(decide(cifar, ds, [{ name: 'class-balance', stage: STAGE_DATA }, ...OUR_TAPS]).fold).to.equal(null);
    expect(decide(cifar, ds, [...OUR_TAPS, { name: 'mixup', stage: 0 }]).fold, 'mixup comes after Normalize').to.equal('scaled');
    expect(decide(cifar, ds, OUR_TAPS, { pixels: { owner: 'other', scale: [1, 1, 1], offset: [0, 0, 0] } }).fold).to.equal(null);
    expect(decide(resolvePipeline(options({ preset: 'imagenet' }), 8, 8, 3), ds).fold).to.equal('normalized');
    // the folded path gives what the unfolded one gives: same seed, same crops and flips
    const raw = { ...ds.getBatchSync([0, 1, 2, 3]), indices: Int32Array.from([0, 1, 2, 3]) };
    for (const p of [cifar, resolvePipeline(options({ preset: 'imagenet' }), 8, 8, 3)]) {
      const f = decide(p, ds);
      tf.tidy(() => {
        const plain = toBatch(raw, [8, 8, 3], 2);
        const a = augmentNormalizeAndErase(augmentGeometryAndColour(plain.x, new Rng(9), p), new Rng(10), p);
        const folded = toBatch(raw, [8, 8, 3], 2, 0, 0, f.plan);
        expect(folded.meta.decoded).to.deep.equal({ pixels: 'augment#t' });
        const b = augmentNormalizeAndErase(augmentGeometryAndColour(folded.x, new Rng(9), p), new Rng(10), p, f.fold);
        expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0], p.crop!.kind).to.be.below(1e-5);
      });
    }
  });

  it('trains on a photo folder with the crop done while decoding (batch.meta.decoded), no leak', async () => {
    const metas: Batch['meta'][] = [];
    let xMean = 0;
    const run = await runSteps({
      plugins: [['augment', { preset: 'imagenet' }]],
      steps: 4,
      config: { data: `folder:${dir}`, dataOptions: { size: 32, valSplit: 0.25, cache: false }, batchSize: 2, limit: {} },
      builtins: [
        {
          name: 'test:probe',
          description: 'records the batches the model gets',
          apply(api) {
            api.hooks.batch.tap({ name: 'test:probe', stage: STAGE_NORMALIZE + 1 }, (b: Batch) => {
              metas.push(b.meta);
              xMean = tf.mean(b.x).dataSync()[0];
              return b;
            });
          },
        },
      ],
    });
    try {
      expect(run.calls).to.include('decode:augment');
      expect(metas.length).to.be.at.least(3);
      for (const m of metas) expect(m.decoded?.cropped).to.match(/^augment#/);
      // the test runner's memory probe taps the batch hook before Normalize: the fold stays off, Normalize runs
      for (const m of metas) expect(m.decoded?.pixels).to.equal(undefined);
      expect(run.logger.lines.join('\n')).to.match(/6 train, 2 val, 32x32x3/);
      expect(Number.isFinite(xMean)).to.equal(true);
      expect(Number.isFinite(run.result.epochs[0].train_loss)).to.equal(true);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });

  it('resumes to the same losses with the crop done while decoding and Normalize folded in (the trainer passes seed, epoch, place)', async () => {
    const decoded = new Set<string>();
    const probe = {
      name: 'test:decoded',
      description: 'records batch.meta.decoded',
      apply(api: { hooks: { batch: { tap(o: object, f: (b: Batch) => Batch): void } } }) {
        api.hooks.batch.tap({ name: 'test:decoded', stage: 1000 }, (b: Batch) => {
          decoded.add(JSON.stringify(b.meta.decoded));
          return b;
        });
      },
    };
    const r = await resumeParity({
      plugins: [['augment', { preset: 'imagenet' }]],
      epochs: 2,
      config: { data: `folder:${dir}`, dataOptions: { size: 32, valSplit: 0.25, cache: false }, batchSize: 2, limit: {} },
      builtins: [probe as never],
    });
    expect(r.resumed).to.deep.equal(r.full);
    const seen = [...decoded].map((d) => JSON.parse(d) as { cropped?: string; pixels?: string });
    expect(seen.length).to.be.greaterThan(0);
    for (const d of seen) {
      expect(d.cropped).to.match(/^augment#\d+$/);
      expect(d.pixels, 'folded: no other tap before Normalize here').to.equal(d.cropped);
    }
  });

  it('resumes exactly after a signal mid-epoch with the crop done while decoding (the generator of each item is a function of its place)', async () => {
    // 6 training images, batch 2: 3 steps an epoch; stopped inside epoch 1 and inside epoch 2
    const r = await interruptParity({
      plugins: [['augment', { preset: 'imagenet' }]],
      epochs: 3,
      at: [2, 4],
      config: { data: `folder:${dir}`, dataOptions: { size: 32, valSplit: 0.25, cache: false }, batchSize: 2, limit: {} },
    });
    expect(r.logs.cut.join('\n')).to.match(/resumed from .*: epoch 1, step 2 of it/);
    assertParity(r);
  });
});
