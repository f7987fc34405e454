// Export formats: tfjs / fp16 / uint8 load in plain @tensorflow/tfjs over http; ONNX float matches tfjs in
// onnxruntime-node; ONNX int8 (post-training) carries QDQ and int8 weights; a training run writes and verifies
// every format (OUT/export-report.json).
import * as tf from '@tensorflow/tfjs-core';
import * as tfUnion from '@tensorflow/tfjs';
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelRegistry, MemoryLogger } from '@tricks/core';
import '@tricks/models/runtime';
import { saveTfjs, toHalf, quantizeUint8 } from '../src/tfjs-formats.js';
import { toOnnx, samePads } from '../src/onnx.js';
import { loadOrt, writeFormat } from '../src/service.js';
import { calibrateInputRanges, quantizeModel } from '../src/quantize.js';
import { testBackend, tiny, tmp, createTestTrainer, perturb } from './helpers.js';
import { registerModels } from '@tricks/models';

const registry = registerModels(new ModelRegistry());
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

function serve(dir: string): Promise<{ server: Server; url: string }> {
  return new Promise((resolve) => {
    const server = createServer(async (req, res) => {
      try {
        const body = await readFile(join(dir, decodeURIComponent(new URL(req.url!, 'http://x').pathname)));
        res.writeHead(200, { 'content-type': req.url!.endsWith('.json') ? 'application/json' : 'application/octet-stream' });
        res.end(body);
      } catch {
        res.writeHead(404).end();
      }
    });
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` }));
  });
}

async function ortRun(bytes: Uint8Array, x: tf.Tensor4D, level: 'disabled' | 'all' = 'all'): Promise<Float32Array> {
  const ort = await loadOrt();
  const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: level });
  const r = await s.run({ input: new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape) });
  await s.release();
  return r.logits.data as Float32Array;
}

describe('export formats', function () {
  this.timeout(120000);
  let dir: string;
  before(async () => {
    await testBackend();
    dir = tmp('tricks-export-');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('float16 and uint8 encodings', () => {
    expect(toHalf(1)).to.equal(0x3c00);
    expect(toHalf(-2)).to.equal(0xc000);
    expect(toHalf(65504)).to.equal(0x7bff);
    expect(toHalf(1e-8)).to.equal(0);
    expect(toHalf(0.1)).to.equal(0x2e66);
    const { q, min, scale } = quantizeUint8(Float32Array.from([-1, 0, 0.5, 3]));
    expect(min + scale * q[1]).to.equal(0); // zero is exact
    expect(Math.abs(min + scale * q[3] - 3)).to.be.below(scale);
    expect(samePads([5, 5], [3, 3], [2, 2], [1, 1])).to.deep.equal([1, 1, 1, 1]);
    expect(samePads([4, 4], [3, 3], [2, 2], [1, 1])).to.deep.equal([0, 0, 1, 1]);
  });

  it('tfjs, tfjs-fp16 and tfjs-uint8 load with plain @tensorflow/tfjs loadLayersModel over http', async () => {
    const m = registry.build('mobilenetv3-small', { inputShape: [32, 32, 3], numClasses: 4 });
    perturb(m);
    const x = tf.randomUniform([2, 32, 32, 3]) as tf.Tensor4D;
    const ref = (m.predict(x) as tf.Tensor).dataSync();
    const sizes: Record<string, number> = {};
    for (const f of ['tfjs', 'tfjs-fp16', 'tfjs-uint8'] as const) {
      const d = join(dir, f);
      await saveTfjs(m, d, f);
      sizes[f] = readFileSync(join(d, 'weights.bin')).byteLength;
      const { server, url } = await serve(d);
      try {
        const loaded = await tfUnion.loadLayersModel(`${url}/model.json`);
        const y = (loaded.predict(x) as tf.Tensor).dataSync();
        const tol = f === 'tfjs' ? 1e-5 : f === 'tfjs-fp16' ? 2e-2 : 0.25;
        expect(maxDiff(y, ref), f).to.be.below(tol);
        if (f !== 'tfjs') expect(maxDiff(y, ref), `${f} differs from float`).to.be.above(0);
        loaded.dispose();
      } finally {
        server.close();
      }
    }
    expect(sizes['tfjs-fp16']).to.be.closeTo(sizes.tfjs / 2, 8);
    expect(sizes['tfjs-uint8']).to.be.below(sizes.tfjs / 3);
  });

  for (const [name, shape] of [
    ['small-cnn', [8, 8, 1]],
    ['resnet20', [16, 16, 3]],
    ['mobilenetv3-small', [32, 32, 3]],
  ] as const) {
    it(`onnx float32 of ${name} matches tfjs in onnxruntime-node`, async () => {
      const m = registry.build(name, { inputShape: [...shape], numClasses: 5, options: name === 'small-cnn' ? { width: 4 } : {} });
      perturb(m);
      const x = tf.randomUniform([3, ...shape]) as tf.Tensor4D;
      const ref = (m.predict(x) as tf.Tensor).dataSync();
      const y = await ortRun(toOnnx(m), x);
      expect(maxDiff(y, ref)).to.be.below(1e-4);
    });
  }

  it('onnx-int8 after post-training calibration: QDQ nodes, int8 weights, output near float, smaller file', async () => {
    const m = registry.build('resnet20', { inputShape: [16, 16, 3], numClasses: 5 });
    perturb(m);
    const batches = [0, 1].map(() => tf.randomUniform([8, 16, 16, 3]) as tf.Tensor4D);
    const ranges = calibrateInputRanges(m, batches);
    expect(Object.keys(ranges)).to.include('s1b1_1_conv');
    const { model: q, quantization } = await quantizeModel(m, { bits: 8, perChannel: true, inputRanges: ranges });
    expect(quantization.s1b1_1_conv.weight.scale).to.have.length(16);
    const x = batches[0];
    const sim = (q.predict(x) as tf.Tensor).dataSync();
    const f32 = toOnnx(m);
    const i8 = toOnnx(q, { quantization });
    expect(i8.byteLength).to.be.below(f32.byteLength / 2.5);
    const text = Buffer.from(i8).toString('latin1');
    expect(text).to.contain('QuantizeLinear').and.to.contain('DequantizeLinear');
    const yq = await ortRun(i8, x);
    const yf = await ortRun(f32, x);
    const spread = Math.max(...Array.from(yf, Math.abs));
    expect(maxDiff(yq, yf)).to.be.below(0.25 * spread);
    expect(maxDiff(yq, yf)).to.be.above(0);
    // the QDQ weights are exactly the folded model's on-grid kernels: without input QDQ the outputs agree
    // (graph optimizations off: with them ORT quantizes a MatMul's float input on its own)
    const wOnly = Object.fromEntries(Object.entries(quantization).map(([k, v]) => [k, { weight: v.weight }]));
    expect(maxDiff(await ortRun(toOnnx(q, { quantization: wOnly }), x, 'disabled'), sim)).to.be.below(1e-4);
    const rec = await writeFormat(m, 'onnx-int8', join(dir, 'int8'), { calibration: () => batches });
    expect(rec).to.include({ quantization: 'ptq' });
    expect(rec.files).to.deep.equal(['model.onnx']);
  });

  it('a run writes every configured format, reloads and evaluates each on raw pixels: export-report.json and run.json', async () => {
    const cfg = tiny({ export: { formats: ['tfjs', 'tfjs-fp16', 'tfjs-uint8', 'web', 'onnx', 'onnx-int8'] } });
    const trainer = await createTestTrainer(cfg, { logger: new MemoryLogger() });
    const result = await trainer.run();
    const report = JSON.parse(readFileSync(join(cfg.out!, 'export-report.json'), 'utf8'));
    expect(report.artifacts.map((a: { format: string }) => a.format)).to.deep.equal(cfg.export!.formats);
    for (const a of report.artifacts) {
      expect(a.count).to.equal(128);
      expect(a.bytes).to.be.greaterThan(1000);
      expect(a.reference_top1).to.equal(report.reference.top1);
      expect(a.agreement, a.format).to.be.at.least(['tfjs', 'web', 'onnx'].includes(a.format) ? 1 : 0.9);
      // the exports take the digits' own 0-255 values (tiled to RGB), the preprocessing inside
      expect(a.input, a.format).to.equal('pixels');
      expect(a.output).to.equal(a.format === 'web' ? 'probabilities' : 'logits');
    }
    // OUT/model stays the training model; the deployable one is OUT/export/tfjs
    expect(report.artifacts[0].dir).to.equal(join(cfg.out!, 'export', 'tfjs'));
    expect(JSON.parse(readFileSync(join(cfg.out!, 'model', 'model.json'), 'utf8')).userDefinedMetadata.inference).to.equal(undefined);
    expect(existsSync(join(cfg.out!, 'export', 'onnx-int8', 'model.onnx'))).to.equal(true);
    for (const f of ['index.html', 'tf.min.js', 'model.json']) expect(existsSync(join(cfg.out!, 'export', 'web', f)), f).to.equal(true);
    const run = JSON.parse(readFileSync(join(cfg.out!, 'run.json'), 'utf8'));
    expect(run.result.artifacts.at(-1).report.exports).to.have.length(6);
    expect(result.artifacts.at(-1)!.report.exports).to.have.length(6);
    rmSync(cfg.out!, { recursive: true, force: true });
  });

  it('an unknown format fails before training, with a hint', async () => {
    try {
      await createTestTrainer(tiny({ export: { formats: ['onxx'] } }), { logger: new MemoryLogger() });
      expect.fail('accepted');
    } catch (e) {
      expect((e as Error).message).to.match(/unknown export format "onxx".*did you mean "onnx"/);
    }
  });
});
