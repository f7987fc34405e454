// The deploy rewrite: every CNN of the zoo exports with stock tfjs-layers classes only and, loaded in a
// process that has plain @tensorflow/tfjs and no tricks code, gives the training model's predictions from raw
// 0-255 pixels (the preprocessing inside). The inference metadata in model.json and model.onnx, the probe of
// the evaluation transform, the web format's files, the runtime script of Swin.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { ModelRegistry, Rng, TricksError, saveModel, type Batch } from '@tricks/core';
import '@tricks/models/runtime';
import { registerModels } from '@tricks/models';
import { deployModel, PREPROCESS_LAYER } from '../src/deploy.js';
import { inferenceMeta, probePreprocessing, readInferenceMeta, deployPlan } from '../src/inference.js';
import { loadOrt, writeFormat } from '../src/service.js';
import { runtimeScript, RUNTIME_SCRIPT } from '../src/web.js';
import { testBackend, tmp, perturb } from './helpers.js';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const registry = registerModels(new ModelRegistry());

/** A run's evaluation transform as the trainer applies it: toBatch's / 255, then augment's Normalize. */
const normalizeTransform =
  (mean: number[], std: number[]) =>
  (b: Batch): Batch => ({ ...b, x: tf.div(tf.sub(b.x, mean), std) as tf.Tensor4D });

/**
 * Loads each model.json with nothing but @tensorflow/tfjs (a fresh process: no tricks layer is registered),
 * predicts on `pixels` and returns the outputs.
 */
function predictStock(jobs: { dir: string; pixels: Uint8Array; shape: number[] }[], work: string): Float32Array[] {
  const spec = jobs.map((j, i) => {
    const input = join(work, `in${i}.bin`);
    writeFileSync(input, j.pixels);
    return { dir: j.dir, input, shape: j.shape, out: join(work, `out${i}.bin`) };
  });
  const jobFile = join(work, 'jobs.json');
  writeFileSync(jobFile, JSON.stringify(spec));
  const script = `
    import * as tf from '@tensorflow/tfjs';
    import '@tensorflow/tfjs-backend-wasm';
    import { readFileSync, writeFileSync } from 'node:fs';
    await tf.setBackend('wasm');
    for (const j of JSON.parse(readFileSync(process.argv[1], 'utf8'))) {
      const json = JSON.parse(readFileSync(j.dir + '/model.json', 'utf8'));
      const w = readFileSync(j.dir + '/weights.bin');
      const m = await tf.loadLayersModel(tf.io.fromMemory({
        modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights,
        weightData: w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength),
      }));
      const x = tf.tensor4d(Float32Array.from(readFileSync(j.input)), j.shape);
      const y = m.predict(x);
      writeFileSync(j.out, Buffer.from((await y.data()).buffer));
      tf.dispose([x, y]);
      m.dispose();
    }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, jobFile], { cwd: pkg, encoding: 'utf8', timeout: 600000 });
  expect(r.status, r.stderr).to.equal(0);
  return spec.map((s) => {
    const b = readFileSync(s.out);
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  });
}

const relDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0,
    spread = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i] - b[i]));
    spread = Math.max(spread, Math.abs(b[i]));
  }
  return m / spread;
};

describe('deploy: stock layers, preprocessing inside, inference metadata', function () {
  this.timeout(900000);
  let dir: string;
  before(async () => {
    await testBackend();
    dir = tmp('tricks-deploy-');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('every zoo CNN exports with stock tfjs layers only: plain @tensorflow/tfjs loads it and, on 0-255 pixels, gives the training model its normalized input', async () => {
    const names = registry
      .list()
      .map((e) => e.name)
      .filter((n) => !n.startsWith('swin'));
    expect(names.length).to.be.at.least(30);
    const mean = [0.485, 0.456, 0.406],
      std = [0.229, 0.224, 0.225];
    const jobs: { dir: string; pixels: Uint8Array; shape: number[] }[] = [];
    const refs: Float32Array[] = [];
    const rng = new Rng(5);
    for (const name of names) {
      // small-cnn on gray images: its export takes RGB and converts inside
      const shape: [number, number, number] = name === 'small-cnn' ? [28, 28, 1] : [32, 32, 3];
      const c = shape[2];
      const m = registry.build(name, { inputShape: shape, numClasses: 5, options: name === 'small-cnn' ? { width: 4 } : {} });
      perturb(m);
      const pixels = Uint8Array.from({ length: 2 * shape[0] * shape[1] * c }, () => rng.int(256));
      const transform = normalizeTransform(mean.slice(0, c), std.slice(0, c));
      const preprocessing = probePreprocessing(transform, shape as [number, number, number], 5);
      const x = tf.div(tf.tensor4d(Float32Array.from(pixels), [2, ...shape] as [number, number, number, number]), 255) as tf.Tensor4D;
      const xn = transform({ x, y: tf.zeros([2, 5]), meta: {} as Batch['meta'] });
      refs.push((m.predict(xn.x) as tf.Tensor).dataSync() as Float32Array);
      tf.dispose([x, xn.x, xn.y]);
      const d = join(dir, name);
      const rec = await writeFormat(m, 'tfjs', d, { preprocessing });
      expect(rec.input).to.equal('pixels');
      const json = JSON.parse(readFileSync(join(d, 'model.json'), 'utf8'));
      const classes = (json.modelTopology.config.layers as { class_name: string }[]).map((l) => l.class_name);
      for (const custom of ['HardSwish', 'HardSigmoid6', 'StochasticDepth', 'GroupedConv2D']) expect(classes, name).to.not.include(custom);
      if (name.startsWith('mobilenet')) expect(rec.rewritten).to.include.keys('HardSwish', 'HardSigmoid6');
      if (name.startsWith('efficientnet')) expect(rec.rewritten).to.include.keys('StochasticDepth');
      if (name.startsWith('resnext')) expect(rec.rewritten!.GroupedConv2D).to.equal(16);
      // gray images tiled to RGB, as a browser's fromPixels gives them
      const rgb = c === 1 ? Uint8Array.from({ length: pixels.length * 3 }, (_, i) => pixels[Math.floor(i / 3)]) : pixels;
      jobs.push({ dir: d, pixels: rgb, shape: [2, shape[0], shape[1], 3] });
      m.dispose();
    }
    const outs = predictStock(jobs, dir);
    names.forEach((name, i) => expect(relDiff(outs[i], refs[i]), name).to.be.below(1e-5));
  });

  it('Swin keeps only WindowAttention, whose tricks-layers.js registers it with a global tf; the rewrite computes the same', async () => {
    const m = registry.build('swin-cifar', { inputShape: [32, 32, 3], numClasses: 4 });
    perturb(m);
    const pre = { scale: [1 / 255, 1 / 255, 1 / 255], offset: [0, 0, 0] };
    const d = deployModel(m, deployPlan(m, pre, { stock: true }));
    expect(d.customLayers).to.deep.equal(['WindowAttention']);
    expect(d.rewritten).to.include.keys('PatchMerge', 'StochasticDepth');
    const x = tf.randomUniform([2, 32, 32, 3], 0, 255) as tf.Tensor4D;
    const ref = (m.predict(tf.div(x, 255)) as tf.Tensor).dataSync();
    expect(relDiff((d.model.predict(x) as tf.Tensor).dataSync(), ref)).to.be.below(1e-5);
    const rec = await writeFormat(m, 'tfjs', join(dir, 'swin'), { preprocessing: pre });
    expect(rec.files).to.include(RUNTIME_SCRIPT);
    expect(rec.customLayers).to.deep.equal(['WindowAttention']);
    const meta = await readInferenceMeta(join(dir, 'swin'));
    expect(meta).to.include({ runtime: RUNTIME_SCRIPT });
    // the script is a classic script over a global tf: it registers its classes with what it is given
    const registered: string[] = [];
    const fakeTf = {
      ...tf,
      ...tfl,
      serialization: { ...tf.serialization, registerClass: (c: { className: string }) => registered.push(c.className) },
    };
    vm.runInNewContext(runtimeScript(), { globalThis: { tf: fakeTf }, Error, Math, Array, Float32Array, Int32Array });
    expect(registered).to.include('WindowAttention');
    d.model.dispose();
    m.dispose();
  });

  it("PyTorch's padding (what tricks convert builds): ZeroPadding2D and a 'valid' GroupedConv2D export to stock layers, same logits", () => {
    for (const name of ['resnext50-32x4d', 'mobilenetv3-small']) {
      const m = registry.build(name, { inputShape: [32, 32, 3], numClasses: 4, options: { padding: 'torch' } });
      perturb(m);
      const pre = { scale: [1 / 255, 1 / 255, 1 / 255], offset: [0, 0, 0] };
      const d = deployModel(m, deployPlan(m, pre, { stock: true }));
      expect(d.customLayers, name).to.deep.equal([]);
      const x = tf.randomUniform([2, 32, 32, 3], 0, 255) as tf.Tensor4D;
      const ref = (m.predict(tf.div(x, 255)) as tf.Tensor).dataSync();
      expect(relDiff((d.model.predict(x) as tf.Tensor).dataSync(), ref), name).to.be.below(1e-5);
      d.model.dispose();
      m.dispose();
    }
  });

  for (const [name, options] of [
    ['mobilenetv3-small', {}],
    ['efficientnet-b0', {}],
    ['resnext50-32x4d-cifar', {}],
    ['resnext50-32x4d', { padding: 'torch' }],
  ] as const) {
    it(`onnx of ${name}${options.padding ? " (padding 'torch')" : ''} with the preprocessing inside: onnxruntime on 0-255 pixels gives the training model's logits`, async () => {
      const m = registry.build(name, { inputShape: [32, 32, 3], numClasses: 4, options });
      perturb(m);
      const preprocessing = probePreprocessing(normalizeTransform([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), [32, 32, 3], 4);
      const rec = await writeFormat(m, 'onnx', join(dir, `onnx-${name}${options.padding ? '-torch' : ''}`), { preprocessing });
      expect(rec.input).to.equal('pixels');
      const x = tf.randomUniform([2, 32, 32, 3], 0, 255) as tf.Tensor4D;
      const ref = tf.tidy(() => (m.predict(tf.add(tf.mul(x, preprocessing.scale), preprocessing.offset)) as tf.Tensor).dataSync());
      const ort = await loadOrt();
      const s = await ort.InferenceSession.create(join(rec.dir, 'model.onnx'));
      const y = (await s.run({ input: new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape) })).logits.data as Float32Array;
      await s.release();
      expect(relDiff(y, ref)).to.be.below(1e-4);
      x.dispose();
      m.dispose();
    });
  }

  it('the probe of the evaluation transform: per-channel scale and offset, and a clear error for what cannot go inside', () => {
    const p = probePreprocessing(normalizeTransform([0.5, 0.25, 0], [0.5, 0.25, 1]), [4, 4, 3], 3);
    p.scale.forEach((s, i) => expect(s).to.be.closeTo([1 / 127.5, 1 / 63.75, 1 / 255][i], 1e-7));
    p.offset.forEach((o, i) => expect(o).to.be.closeTo([-1, -1, 0][i], 1e-6));
    expect(probePreprocessing((b) => b, [2, 2, 1], 2)).to.deep.include({ offset: [0] });
    const square = (b: Batch): Batch => ({ ...b, x: tf.square(b.x) as tf.Tensor4D });
    expect(() => probePreprocessing(square, [4, 4, 3], 3)).to.throw(TricksError, /not a per-channel scale and offset/);
    const crop = (b: Batch): Batch => ({ ...b, x: tf.slice(b.x, [0, 0, 0, 0], [-1, 2, 2, -1]) });
    expect(() => probePreprocessing(crop, [4, 4, 3], 3)).to.throw(TricksError, /changes the image shape/);
    const mix = (b: Batch): Batch => ({ ...b, x: tf.reverse(b.x, 1) as tf.Tensor4D });
    expect(() => probePreprocessing(mix, [4, 4, 3], 3)).to.throw(TricksError, /--raw/);
  });

  it('the metadata contract in model.json and model.onnx; --raw; fp16/uint8 keep the preprocessing exact; a training model is named', async () => {
    const m = registry.build('resnet20', { inputShape: [16, 16, 3], numClasses: 3 });
    perturb(m);
    m.setUserDefinedMetadata({
      tricks: { classNames: ['cat', 'dog', 'fox'], resize: { policy: 'resize-shorter-crop', cropPct: 0.875, interpolation: 'lanczos3' } },
    });
    const preprocessing = probePreprocessing(normalizeTransform([0.4, 0.5, 0.6], [0.2, 0.3, 0.25]), [16, 16, 3], 3);
    await writeFormat(m, 'web', join(dir, 'web'), { preprocessing });
    const web = await readInferenceMeta(join(dir, 'web', 'model.json'));
    expect(web).to.deep.equal({
      ...inferenceMeta(m, deployPlan(m, preprocessing, { stock: true, probabilities: true })),
    });
    expect(web).to.deep.include({
      classNames: ['cat', 'dog', 'fox'],
      inputSize: [16, 16],
      channels: 3,
      resize: { policy: 'resize-shorter-crop', cropPct: 0.875, interpolation: 'lanczos3' },
      input: 'pixels',
      output: 'probabilities',
    });
    const raw = await writeFormat(m, 'tfjs', join(dir, 'raw'), { preprocessing, raw: true, probabilities: false });
    expect(raw).to.include({ input: 'normalized', output: 'logits' });
    expect(await readInferenceMeta(join(dir, 'raw'))).to.deep.include({ input: 'normalized', preprocessing });
    // onnx: the same preprocessing inside, in metadata_props
    const rec = await writeFormat(m, 'onnx', join(dir, 'onnx'), { preprocessing });
    const meta = await readInferenceMeta(join(dir, 'onnx'));
    expect(meta).to.deep.include({ input: 'pixels', output: 'logits', classNames: ['cat', 'dog', 'fox'] });
    expect(rec.input).to.equal('pixels');
    const x = tf.randomUniform([2, 16, 16, 3], 0, 255) as tf.Tensor4D;
    const xn = tf.add(tf.mul(x, preprocessing.scale), preprocessing.offset);
    const ref = (m.predict(xn) as tf.Tensor).dataSync();
    const ort = await loadOrt();
    const s = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'));
    const y = (await s.run({ input: new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape) })).logits.data as Float32Array;
    await s.release();
    expect(relDiff(y, ref)).to.be.below(1e-5);
    // compressed formats: the preprocessing weights stay float32
    for (const f of ['tfjs-fp16', 'tfjs-uint8'] as const) {
      await writeFormat(m, f, join(dir, f), { preprocessing });
      const specs = JSON.parse(readFileSync(join(dir, f, 'model.json'), 'utf8')).weightsManifest[0].weights as {
        name: string;
        quantization?: unknown;
      }[];
      expect(
        specs.filter((w) => w.name.startsWith(PREPROCESS_LAYER)).every((w) => !w.quantization),
        f,
      ).to.equal(true);
      expect(
        specs.some((w) => w.quantization),
        f,
      ).to.equal(true);
    }
    // a training model has no inference metadata: the error says how to make an export
    await saveModel(m, join(dir, 'trained'));
    try {
      await readInferenceMeta(join(dir, 'trained'));
      expect.fail('read');
    } catch (e) {
      expect(e).to.be.instanceOf(TricksError);
      expect((e as TricksError).message).to.match(/no inference metadata/);
      expect((e as TricksError).hint).to.match(/tricks export --model/);
    }
    tf.dispose([x, xn]);
    m.dispose();
  });
});
