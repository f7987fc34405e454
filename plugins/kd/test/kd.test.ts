import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import {
  createHooks,
  lossTerms,
  ModelRegistry,
  tapOnly,
  saveModel,
  TricksError,
  validate,
  type LossState,
  type PluginApi,
  type TrainContext,
} from '@tricks/core';
import plugin, { kdTerms, loadTeacher, resolveTeacherDir, teacherLogits, type KdOptions } from '../src/index.js';
import { registerModels } from '@tricks/models';

interface Case {
  temperature: number;
  alpha: number;
  student: number[][];
  teacher: number[][];
  targets: number[][];
  weights: number[] | null;
  kd: number;
  ce: number;
  loss: number;
  grad: number[][];
}
const cases = JSON.parse(readFileSync(new URL('../../test/fixtures/cases.json', import.meta.url), 'utf8')) as Case[];

function close(a: ArrayLike<number>, b: number[], what: string) {
  for (let i = 0; i < b.length; i++)
    if (!(Math.abs(a[i]! - b[i]!) <= 1e-5 * Math.abs(b[i]!) + 1e-7)) throw new Error(`${what}[${i}]: ${a[i]} != ${b[i]}`);
}

const meta = (sampleWeights?: tf.Tensor1D) => ({ indices: new Int32Array(), labels: new Int32Array(), epoch: 0, step: 0, sampleWeights });
const quiet = { info() {}, warn() {}, error() {}, debug() {} } as unknown as TrainContext['logger'];

function tinyModel(classes: number, softmax = false): tfl.LayersModel {
  const m = tfl.sequential();
  m.add(tfl.layers.flatten({ inputShape: [4, 4, 1] }));
  m.add(tfl.layers.dense({ units: 8, activation: 'relu' }));
  m.add(tfl.layers.batchNormalization());
  m.add(tfl.layers.dense({ units: classes, activation: softmax ? 'softmax' : 'linear' }));
  return m;
}

describe('kd', () => {
  let dir: string;
  before(async () => {
    await tf.setBackend('wasm');
    dir = mkdtempSync(join(tmpdir(), 'kd-test-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('loss against torch (alpha*T^2*kl_div(batchmean) + (1-alpha)*cross_entropy, test/fixtures/cases.json)', () => {
    for (const c of cases) {
      it(`T ${c.temperature}, alpha ${c.alpha}${c.weights ? ', sample weights' : ''}: kd term, ce term, gradient`, () => {
        tf.tidy(() => {
          const t = tf.tensor2d(c.teacher);
          const y = tf.tensor2d(c.targets);
          const w = c.weights ? tf.tensor1d(c.weights) : undefined;
          const state = (s: tf.Tensor2D): LossState => ({
            logits: s,
            targets: y,
            sampleWeights: w,
            terms: {},
            batch: { x: tf.zeros([1, 4, 4, 1]) as tf.Tensor4D, y, meta: meta(w) },
          });
          const out = kdTerms(state(tf.tensor2d(c.student)), t, c);
          close(out.terms.kd!.dataSync(), [c.kd], 'kd');
          // the base term the trainer computes after the taps, scaled by ceScale = 1 - alpha
          // (alpha 1: ceScale 0 leaves the base term out, which is the fixture's 0)
          close((lossTerms(out).ce ?? tf.scalar(0)).dataSync(), [c.ce], 'ce');
          const g = tf.grad((s: tf.Tensor) => tf.addN(Object.values(lossTerms(kdTerms(state(s as tf.Tensor2D), t, c)))))(
            tf.tensor2d(c.student),
          );
          close(g.dataSync(), c.grad.flat(), 'grad');
        });
      });
    }
    it('scales a focal term too, and leaves other terms', () => {
      tf.tidy(() => {
        const s = tf.tensor2d([[1, 2, 3]]);
        const y = tf.tensor2d([[0, 0, 1]]);
        const out = kdTerms(
          {
            logits: s,
            targets: y,
            terms: { focal: tf.scalar(2), l1: tf.scalar(3) },
            batch: { x: tf.zeros([1, 4, 4, 1]) as tf.Tensor4D, y, meta: meta() },
          },
          s,
          { temperature: 2, alpha: 0.75 },
        );
        expect(out.terms.focal!.dataSync()[0]).to.be.closeTo(0.5, 1e-7);
        expect(out.terms.l1!.dataSync()[0]).to.equal(3);
        expect(out.terms.kd!.dataSync()[0]).to.be.closeTo(0, 1e-7); // same logits: KL = 0
        expect(out.ceScale).to.equal(0.25); // the base term, once the trainer computes it
      });
    });
  });

  describe('teacher', () => {
    it('loads from a model dir or a run dir, frozen, and teacherBatchSize chunks give the same logits', async () => {
      const m = tinyModel(3);
      await saveModel(m, join(dir, 'run', 'model'));
      expect(resolveTeacherDir(join(dir, 'run'))).to.equal(join(dir, 'run', 'model'));
      const teacher = await loadTeacher(
        { teacher: join(dir, 'run') },
        { inputShape: [4, 4, 1], numClasses: 3, models: registerModels(new ModelRegistry()) },
      );
      expect(teacher.trainableWeights).to.have.length(0);
      tf.tidy(() => {
        const x = tf.randomUniform([10, 4, 4, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
        const whole = teacherLogits(teacher, x, 0);
        const chunked = teacherLogits(teacher, x, 3);
        const ref = m.predict(x) as tf.Tensor;
        close(chunked.dataSync(), Array.from(whole.dataSync()), 'chunked');
        close(whole.dataSync(), Array.from(ref.dataSync()), 'teacher = saved model');
      });
      teacher.dispose();
      m.dispose();
    });

    it('teacherModel: builds the named model and copies the stored weights in; falls back to model.json when they do not fit', async () => {
      const cnn = registerModels(new ModelRegistry()).build('small-cnn', { inputShape: [8, 8, 1], numClasses: 3 });
      await saveModel(cnn, join(dir, 'cnn'));
      const teacher = await loadTeacher(
        { teacher: join(dir, 'cnn'), teacherModel: { name: 'small-cnn' } },
        { inputShape: [8, 8, 1], numClasses: 3, models: registerModels(new ModelRegistry()) },
      );
      tf.tidy(() => {
        const x = tf.randomUniform([4, 8, 8, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
        close(teacherLogits(teacher, x, 0).dataSync(), Array.from((cnn.predict(x) as tf.Tensor).dataSync()), 'rebuilt teacher');
      });
      teacher.dispose();
      // wrong options: the weights do not fit; the saved topology is used, with a warning
      const warnings: string[] = [];
      const fb = await loadTeacher(
        { teacher: join(dir, 'cnn'), teacherModel: { name: 'small-cnn', options: { width: 4 } } },
        { inputShape: [8, 8, 1], numClasses: 3, models: registerModels(new ModelRegistry()) },
        (m) => warnings.push(m),
      );
      expect(warnings[0]).to.match(/plugins.kd.teacherModel.*do not fit model "small-cnn".*model.json instead/);
      expect(fb.countParams()).to.equal(cnn.countParams());
      fb.dispose();
      // a model.json whose topology cannot be loaded (unknown layer class): the weights alone are enough
      mkdirSync(join(dir, 'weights-only'));
      const json = JSON.parse(readFileSync(join(dir, 'cnn', 'model.json'), 'utf8'));
      json.modelTopology.config.layers[1].class_name = 'NoSuchLayer';
      writeFileSync(join(dir, 'weights-only', 'model.json'), JSON.stringify(json));
      copyFileSync(join(dir, 'cnn', 'weights.bin'), join(dir, 'weights-only', 'weights.bin'));
      const w = await loadTeacher(
        { teacher: join(dir, 'weights-only'), teacherModel: { name: 'small-cnn' } },
        { inputShape: [8, 8, 1], numClasses: 3, models: registerModels(new ModelRegistry()) },
      );
      expect(w.countParams()).to.equal(cnn.countParams());
      w.dispose();
      const err = await loadTeacher(
        { teacher: join(dir, 'weights-only'), teacherModel: { name: 'small-cnn', options: { width: 4 } } },
        { inputShape: [8, 8, 1], numClasses: 3, models: registerModels(new ModelRegistry()) },
      ).catch((e) => e);
      expect(err).to.be.instanceOf(TricksError);
      expect(err.message).to.match(/plugins.kd.teacherModel.*do not fit/);
      cnn.dispose();
    });

    it('names the option and the problem: no model.json, wrong class count, wrong input shape', async () => {
      expect(() => resolveTeacherDir(join(dir, 'nothing'))).to.throw(TricksError, /plugins.kd.teacher.*no model.json/);
      const m = tinyModel(5);
      await saveModel(m, join(dir, 'five'));
      m.dispose();
      const e1 = await loadTeacher(
        { teacher: join(dir, 'five') },
        { inputShape: [4, 4, 1], numClasses: 3, models: registerModels(new ModelRegistry()) },
      ).catch((e) => e);
      expect(e1).to.be.instanceOf(TricksError);
      expect(e1.message).to.match(/5 outputs, the data has 3 classes/);
      const e2 = await loadTeacher(
        { teacher: join(dir, 'five') },
        { inputShape: [8, 8, 1], numClasses: 5, models: registerModels(new ModelRegistry()) },
      ).catch((e) => e);
      expect(e2.message).to.match(/takes 4x4x1 inputs, the data is 8x8x1/);
    });
  });

  it('the plugin: setup loads, batch hook adds teacher logits outside the tape, loss hook adds kd, teardown frees the teacher', async () => {
    const teacherModel = tinyModel(3, true); // softmax output: the plugin uses log-probabilities
    await saveModel(teacherModel, join(dir, 'soft'));
    const opts: Record<string, unknown> = { teacher: join(dir, 'soft') };
    validate(plugin.schema!, opts, 'plugin kd', 'plugins.kd');
    expect(opts).to.include({ temperature: 2, alpha: 0.7, teacherBatchSize: 0 });
    const hooks = createHooks();
    plugin.apply({ hooks: tapOnly(hooks), config: {} as PluginApi['config'], registerState() {} }, opts as unknown as KdOptions);
    const ctx = { inputShape: [4, 4, 1], numClasses: 3, logger: quiet } as unknown as TrainContext;
    const before = tf.memory().numTensors;
    await hooks.setup.promise(ctx);
    const student = tinyModel(3);
    const vars = student.trainableWeights.map((w) => w.read() as tf.Variable);
    tf.tidy(() => {
      const x = tf.randomUniform([6, 4, 4, 1], 0, 1, 'float32', 2) as tf.Tensor4D;
      const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32'), 3) as tf.Tensor2D;
      const batch = hooks.batch.call({ x, y, meta: meta() }, ctx);
      const t = batch.meta.teacherLogits as tf.Tensor2D;
      close(tf.exp(t).dataSync(), Array.from((teacherModel.predict(x) as tf.Tensor).dataSync()), 'log-probabilities');
      let names: string[] = [];
      const { grads } = tf.variableGrads(() => {
        const logits = student.apply(x, { training: true }) as tf.Tensor2D;
        const terms = lossTerms(hooks.loss.call({ logits, batch, targets: y, terms: {} }, ctx));
        names = Object.keys(terms);
        return tf.addN(Object.values(terms)) as tf.Scalar;
      }, vars);
      expect(names).to.deep.equal(['ce', 'kd']);
      expect(Object.keys(grads)).to.have.length(vars.length);
    });
    await hooks.teardown.promise(ctx, {});
    student.dispose();
    teacherModel.dispose();
    expect(tf.memory().numTensors).to.equal(before - teacherModel.weights.length); // the loaded teacher is gone too
  });
});
