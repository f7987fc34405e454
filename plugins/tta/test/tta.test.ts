import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { evaluateModel, type Dataset, type EvalResult } from '@tricks/core';
import { assertOptionError, cleanup, runSteps, useTestBackend } from '@tricks/helper-plugin-test-runner';
import { ttaInference, ttaViews, viewCount, VIEWS } from '../src/index.js';

interface Fixture {
  shape: [number, number, number, number];
  x: number[];
  cases: { cropPct: number; padding: number; resized: [number, number]; views: number[][] }[];
}
const fixture = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'views.json'), 'utf8')) as Fixture;

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('tta plugin', function () {
  this.timeout(120_000);
  before(async () => {
    await useTestBackend();
  });

  for (const c of fixture.cases) {
    const how = c.padding ? `Pad(${c.padding})` : `Resize(${c.resized.join('x')})`;
    it(`ten-crop (crop_pct ${c.cropPct}, padding ${c.padding}) equals torchvision's ${how} + TenCrop, view for view`, () => {
      const x = tf.tensor4d(fixture.x, fixture.shape);
      const views = ttaViews(x, 'ten-crop', c.cropPct, c.padding);
      expect(views).to.have.length(10);
      views.forEach((v, i) => {
        expect(v.shape).to.deep.equal(fixture.shape);
        expect(maxDiff(v.dataSync(), c.views[i]), `view ${i}`).to.be.below(1e-5);
      });
      // five-crop is the first half of ten-crop
      const five = ttaViews(x, 'five-crop', c.cropPct, c.padding);
      expect(five).to.have.length(5);
      five.forEach((v, i) => expect(maxDiff(v.dataSync(), views[i].dataSync())).to.equal(0));
      tf.dispose([x, ...views, ...five]);
    });
  }

  it('flip views are the image and its mirror', () => {
    const x = tf.tensor4d(fixture.x, fixture.shape);
    const [a, b] = ttaViews(x, 'flip');
    expect(maxDiff(a.dataSync(), Float32Array.from(fixture.x))).to.equal(0);
    const [n, h, w, c] = fixture.shape;
    const mirrored = new Float32Array(fixture.x.length); // float32, as the tensor holds them
    for (let i = 0; i < n; i++)
      for (let r = 0; r < h; r++)
        for (let col = 0; col < w; col++)
          for (let k = 0; k < c; k++) mirrored[((i * h + r) * w + col) * c + k] = fixture.x[((i * h + r) * w + (w - 1 - col)) * c + k];
    expect(maxDiff(b.dataSync(), mirrored)).to.equal(0);
    tf.dispose([x, a, b]);
  });

  it('scores log of the mean softmax over the views (or the mean logits), without leaking tensors', async () => {
    const run = await runSteps({ steps: 2 });
    const model = run.trainer.ctx.model;
    const x = tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
    for (const views of VIEWS) {
      const before = tf.memory().numTensors;
      const got = ttaInference({ views })(model, x);
      const gotLogits = ttaInference({ views, merge: 'logits' })(model, x);
      expect(tf.memory().numTensors).to.equal(before + 2);
      const vs = ttaViews(x, views);
      expect(vs).to.have.length(viewCount(views));
      const outs = vs.map((v) => model.predict(v) as tf.Tensor2D);
      const probs = outs.map((o) => tf.softmax(o).arraySync() as number[][]);
      const logits = outs.map((o) => o.arraySync() as number[][]);
      const want = probs[0].map((row, i) => row.map((_, j) => Math.log(probs.reduce((s, p) => s + p[i][j], 0) / probs.length)));
      const wantLogits = logits[0].map((row, i) => row.map((_, j) => logits.reduce((s, l) => s + l[i][j], 0) / logits.length));
      expect(maxDiff(got.dataSync(), want.flat()), views).to.be.below(1e-5);
      expect(maxDiff(gotLogits.dataSync(), wantLogits.flat()), views).to.be.below(1e-5);
      tf.dispose([got, gotLogits, ...vs, ...outs]);
    }
    x.dispose();
    cleanup(run);
  });

  it("as a plugin, the run's validation is scored with TTA (the same numbers as evaluating with ttaInference)", async () => {
    const run = await runSteps({ plugins: [['tta', { views: 'flip' }]], steps: 3 });
    const { model, val, evalBatchSize } = run.trainer.ctx;
    const last = run.result.epochs.at(-1)!;
    const transform = (b: Parameters<typeof run.trainer.hooks.evalBatch.call>[0]) => run.trainer.hooks.evalBatch.call(b, run.trainer.ctx);
    const withTta: EvalResult = await evaluateModel(model, val as Dataset, evalBatchSize, transform, ttaInference({ views: 'flip' }));
    const plain: EvalResult = await evaluateModel(model, val as Dataset, evalBatchSize, transform);
    expect(last.val_loss).to.be.closeTo(withTta.loss, 1e-6);
    expect(last.val_top1).to.equal(withTta.top1);
    expect(withTta.loss).to.not.be.closeTo(plain.loss, 1e-6);
    cleanup(run);
  });

  it('rejects unknown views and crop shares by name', async () => {
    await assertOptionError('tta', { views: 'twenty-crop' }, /views/);
    await assertOptionError('tta', { cropPct: 1.5 }, /cropPct/);
    await assertOptionError('tta', { padding: -1 }, /padding/);
    expect(() => ttaInference({ views: 'x' as never })).to.throw(/unknown views "x".*/);
  });
});
