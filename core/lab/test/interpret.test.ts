import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import sharp from 'sharp';
import { ContainerModule } from 'inversify';
import { definePlugin, TOKENS, toBatch, TricksError, type TrainContext } from '@tricks/core';
import { camLayer, gradCam, mostConfused, runGraph, topLosses } from '../src/report/interpret.js';
import { interpretOptions } from '../src/report/interpretation.js';
import { buildZooModel } from '../src/zoo-model.js';
import { createTestTrainer, testBackend, tiny } from './helpers.js';

const ref = JSON.parse(readFileSync(new URL('../../test/fixtures/gradcam/reference.json', import.meta.url), 'utf8'));

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).to.equal(b.length);
  return Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i]) / Math.max(1, Math.abs(b[i]))));
};

/** The net of fixtures/gradcam/make_fixtures.py, with its weights. */
function fixtureNet(): tfl.LayersModel {
  const inp = tfl.input({ shape: [8, 8, 2] });
  const conv = (name: string, x: tfl.SymbolicTensor) =>
    tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name }).apply(x) as tfl.SymbolicTensor;
  const relu1 = tfl.layers.reLU({ name: 'relu1' }).apply(conv('conv1', inp)) as tfl.SymbolicTensor;
  const bn = tfl.layers.batchNormalization({ epsilon: ref.eps, name: 'bn' }).apply(conv('conv2', relu1)) as tfl.SymbolicTensor;
  const add = tfl.layers.add({ name: 'add' }).apply([relu1, bn]) as tfl.SymbolicTensor;
  const pool = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(tfl.layers.reLU({ name: 'relu2' }).apply(add));
  const fc1 = tfl.layers.dense({ units: 6, activation: 'relu', name: 'fc1' }).apply(tfl.layers.flatten().apply(pool));
  const out = tfl.layers.dense({ units: 3, name: 'fc2' }).apply(fc1) as tfl.SymbolicTensor;
  const m = tfl.model({ inputs: inp, outputs: out });
  const set = (name: string, shapes: number[][], values: number[][]) =>
    m.getLayer(name).setWeights(values.map((v, i) => tf.tensor(v, shapes[i])));
  set('conv1', [[3, 3, 2, 4], [4]], ref.conv1);
  set('conv2', [[3, 3, 4, 4], [4]], ref.conv2);
  set('bn', [[4], [4], [4], [4]], ref.bn);
  set('fc1', [[64, 6], [6]], ref.fc1);
  set('fc2', [[6, 3], [3]], ref.fc2);
  return m;
}

describe('interpretation: Grad-CAM, top losses, most confused', function () {
  this.timeout(300000);
  before(testBackend);

  it('Grad-CAM equals PyTorch (hooks on a conv/bn/skip/max-pool/dense net), raw and upsampled, on two layers', () => {
    const m = fixtureNet();
    const x = tf.tensor4d(ref.x, ref.shape);
    expect(maxDiff(runGraph(m, x, camLayer(m)!).logits.dataSync(), ref.logits), 'logits').to.be.below(1e-4);
    expect(maxDiff((m.predict(x) as tf.Tensor).dataSync(), ref.logits), 'predict').to.be.below(1e-4);
    // the default layer is the last 4-D output: the max-pool (4x4), not its 8x8 input
    expect(camLayer(m)!.name).to.equal('pool');
    for (const layer of ['pool', 'relu1']) {
      const { cam, up } = gradCam(m, x, ref.classes, camLayer(m, layer)!);
      expect(cam.shape, layer).to.deep.equal(ref[layer].camShape);
      expect(maxDiff(cam.dataSync(), ref[layer].cam), `${layer} cam`).to.be.below(1e-4);
      expect(maxDiff(up.dataSync(), ref[layer].up), `${layer} upsampled`).to.be.below(1e-4);
      // not all zero: the maps carry evidence (the fixture's classes are chosen so)
      expect(Math.max(...cam.dataSync()), layer).to.be.greaterThan(0.05);
    }
    expect(() => camLayer(m, 'fc1')).to.throw(TricksError, /report\.interpret\.layer: "fc1" is not a layer .* 4-D/);
  });

  it('on resnet20 (skip connections, global average pooling, dense) Grad-CAM is CAM: ReLU(W^c . A) / (H W)', () => {
    const m = buildZooModel('resnet20', 32, 3, 10);
    const at = camLayer(m)!;
    expect(at.name).to.equal('s3b3_out');
    const x = tf.randomUniform([3, 32, 32, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
    const classes = [1, 4, 9];
    const { cam } = gradCam(m, x, classes, at);
    // independently: the stage's output from a sub-model, the classifier's kernel
    const a = tfl.model({ inputs: m.inputs, outputs: m.getLayer('s3b3_out').output as tfl.SymbolicTensor }).predict(x) as tf.Tensor4D;
    const w = m.getLayer('logits').getWeights()[0].arraySync() as number[][]; // [64, 10]
    const expected = (a.arraySync() as number[][][][]).flatMap((img, i) =>
      img.flatMap((row) => row.map((v) => Math.max(0, v.reduce((s, ak, k) => s + ak * w[k][classes[i]], 0) / 64))),
    );
    expect(maxDiff(cam.dataSync(), expected)).to.be.below(1e-5);
    expect(Math.max(...cam.dataSync())).to.be.greaterThan(0);
  });

  it('finds the last convolutional stage of the zoo and runs its graph as predict does', () => {
    const cases: [string, string, number][] = [
      ['small-cnn', 'pool2', 8],
      ['resnet20', 's3b3_out', 8],
      ['mobilenetv3-small', 'head_act', 1],
      ['efficientnet-b0', 'head_act', 1],
      // at 32 px ResNet-18's last stage is 1x1: the last map larger than that is stage 3's (2x2)
      ['resnet18', 's3b2_out', 2],
    ];
    for (const [name, layer, size] of cases) {
      const input = name.startsWith('mobilenet') || name.startsWith('efficient') ? 64 : 32;
      const m = buildZooModel(name, input, 3, 10);
      const at = camLayer(m)!;
      expect(at.name, name).to.equal(layer);
      if (size > 1) expect(at.shape[1], name).to.equal(size);
      const x = tf.randomUniform([2, input, input, 3], 0, 1, 'float32', 3);
      const d = maxDiff(runGraph(m, x, at).logits.dataSync(), (m.predict(x) as tf.Tensor).dataSync());
      expect(d, name).to.be.below(1e-4);
      tf.dispose(x);
      m.dispose();
    }
  });

  it('most confused is fastai most_confused(min_val); top losses are sorted, ties by position', () => {
    const cm = [
      [5, 2, 3],
      [0, 7, 3],
      [4, 1, 6],
    ];
    expect(mostConfused(cm, ['a', 'b', 'c'])).to.deep.equal([
      { actual: 'c', predicted: 'a', count: 4 },
      { actual: 'a', predicted: 'c', count: 3 },
      { actual: 'b', predicted: 'c', count: 3 },
      { actual: 'a', predicted: 'b', count: 2 },
      { actual: 'c', predicted: 'b', count: 1 },
    ]);
    // min_val 3; a class without a name is its index
    expect(mostConfused(cm, ['a'], 3).map((c) => `${c.actual}>${c.predicted}:${c.count}`)).to.deep.equal(['2>a:4', 'a>2:3', '1>2:3']);
    expect(topLosses([0.5, 2, 0.1, 2, 3], 3)).to.deep.equal([4, 1, 3]);
  });

  it('config.report.interpret: defaults, false, sizes, and one clear error for a typo', () => {
    expect(interpretOptions({})).to.deep.equal({ topLosses: 16, gradcam: 4, minVal: 1, maxImages: 10000 });
    expect(interpretOptions({ report: { interpret: false } })).to.equal(undefined);
    expect(interpretOptions({ report: { interpret: { topLosses: 9, layer: 'x' } } })).to.include({ topLosses: 9, gradcam: 4, layer: 'x' });
    expect(() => interpretOptions({ report: { interpret: { topLoses: 9 } } })).to.throw(
      TricksError,
      /report\.interpret.*topLoses[\s\S]*topLosses/,
    );
    expect(() => interpretOptions({ report: { interpret: { gradcam: -1 } } })).to.throw(TricksError, /report\.interpret\.gradcam/);
  });

  it('a real run on digits: report.html has the top losses, most confused and Grad-CAM, equal to an independent computation', async () => {
    // evaluation normalizes (x - 0.5) / 0.25 and training does not: the interpretation must apply the evalBatch taps
    const norm = definePlugin({
      name: 'test:eval-normalize',
      description: 'normalizes evaluation batches',
      apply(api) {
        api.hooks.evalBatch.tap({ name: 'test:eval-normalize' }, (b) => ({ ...b, x: tf.div(tf.sub(b.x, 0.5), 0.25) }));
      },
    });
    let seen: { html: string; losses: number[]; wrong: boolean[]; labels: number[]; ctx: TrainContext } | undefined;
    const capture = definePlugin({
      name: 'test:capture',
      description: 'checks the report against its own computation after it is written',
      apply(api) {
        api.hooks.done.tapPromise({ name: 'test:capture' }, async (ctx, result) => {
          const html = readFileSync(join(result.out, 'report.html'), 'utf8');
          const all = Int32Array.from({ length: ctx.val.length }, (_, i) => i);
          const raw = await ctx.val.getBatch(all);
          const logits = tf.tidy(() => {
            const x = toBatch({ ...raw, indices: all }, ctx.val.shape, ctx.numClasses).x;
            return tf.mul(ctx.model.predict(tf.div(tf.sub(x, 0.5), 0.25)) as tf.Tensor2D, 0.5) as tf.Tensor2D;
          });
          const z = await logits.array();
          logits.dispose();
          // cross-entropy in float64: log-sum-exp minus the true class's logit
          const losses = z.map((row, i) => {
            const mx = Math.max(...row);
            return mx + Math.log(row.reduce((s, v) => s + Math.exp(v - mx), 0)) - row[raw.labels[i]];
          });
          const wrong = z.map((row, i) => row.indexOf(Math.max(...row)) !== raw.labels[i]);
          seen = { html, losses, wrong, labels: Array.from(raw.labels), ctx };
        });
      },
    });
    // and evaluation's forward (TOKENS.Inference) halves the logits: the losses must be scored by it too
    const halved = new ContainerModule(({ rebind }) => {
      rebind(TOKENS.Inference).toConstantValue((m: tfl.LayersModel, x: tf.Tensor4D) =>
        tf.tidy(() => tf.mul(m.predict(x) as tf.Tensor, 0.5)),
      );
    });
    const trainer = await createTestTrainer(tiny({ epochs: 1 }), { builtins: [norm, capture], modules: [halved] });
    await trainer.run();
    const { html, losses, wrong, labels, ctx } = seen!;
    const n = ctx.val.length;
    expect(html).to.contain('id="interpretation"').and.to.contain(`on ${n} validation images`);
    // the mean of the per-sample losses is the run's val_loss (same transforms, same model)
    expect(Math.abs(losses.reduce((a, b) => a + b, 0) / n - ctx.lastEval!.loss)).to.be.below(1e-4);
    const figures = [...html.matchAll(/<figure class="(top-loss|gradcam)" data-index="(\d+)" data-loss="([^"]+)">([\s\S]*?)<\/figure>/g)];
    const tops = figures.filter((f) => f[1] === 'top-loss');
    const order = losses.map((l, i) => [l, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    expect(tops.map((f) => Number(f[2]))).to.deep.equal(order.slice(0, 16).map((o) => o[1]));
    expect(
      maxDiff(
        tops.map((f) => Number(f[3])),
        order.slice(0, 16).map((o) => o[0]),
      ),
    ).to.be.below(1e-4);
    // most confused: the off-diagonal of the epoch's confusion matrix, every misclassified image counted once
    const counts = [...html.matchAll(/<li data-count="(\d+)">/g)].map((m) => Number(m[1]));
    expect(counts).to.deep.equal(
      mostConfused(ctx.lastEval!.confusion, [])
        .map((c) => c.count)
        .slice(0, 40),
    );
    expect(counts.reduce((a, b) => a + b, 0)).to.equal(Math.round(n * (1 - ctx.lastEval!.top1)));
    // Grad-CAM: up to 4 misclassified top losses and 4 correct images, each the image and its overlay (28 px x 4)
    const cams = figures.filter((f) => f[1] === 'gradcam');
    // (the wrong ones come from the 16 top losses, the right ones are the most confident of a class each: fewer
    // of either when fewer of the top losses are misclassified, or fewer classes have a correct image)
    const wrongOnTop = order.slice(0, 16).filter(([, i]) => wrong[i]).length;
    const classesRight = new Set(labels.filter((_, i) => !wrong[i])).size;
    expect(cams).to.have.length(Math.min(4, wrongOnTop) + Math.min(4, classesRight));
    const png = cams[0][4].match(/src="data:image\/png;base64,([^"]+)"/g)!;
    expect(png).to.have.length(2);
    const meta = await sharp(Buffer.from(png[1].slice('src="data:image/png;base64,'.length, -1), 'base64')).metadata();
    expect([meta.width, meta.height]).to.deep.equal([112, 112]);
    expect(html).to.match(/on <code>pool2<\/code> \(7×7×16\)/);
  });

  it('report.interpret turns the section off or caps it; a typo fails before training', async () => {
    const off = await createTestTrainer(tiny({ epochs: 1, report: { interpret: false } }));
    const r = await off.run();
    expect(readFileSync(join(r.out, 'report.html'), 'utf8')).to.not.contain('id="interpretation"');
    const capped = await createTestTrainer(tiny({ epochs: 1, report: { interpret: { maxImages: 50, topLosses: 5, gradcam: 0 } } }));
    const html = readFileSync(join((await capped.run()).out, 'report.html'), 'utf8');
    expect(html).to.contain('on 50 validation images (of 128, evenly spaced');
    expect(html.match(/class="top-loss"/g)).to.have.length(5);
    expect(html).to.not.contain('Grad-CAM</h3>');
    let err: unknown;
    await createTestTrainer(tiny({ report: { interpret: { topLoses: 5 } } })).catch((e) => (err = e));
    expect(err).to.be.instanceOf(TricksError);
    expect(String(err))
      .to.match(/report\.interpret/)
      .and.to.match(/topLosses/);
  });
});
