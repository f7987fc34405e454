// The parity twin's model is tricks' model: core/lab/py/parity_twin.py's SmallCnn, on fixed weights
// (test/fixtures/parity/make_fixtures.py), gives the logits tricks' small-cnn gives on the same weights, in
// evaluation and in training mode (batch statistics), and leaves the same BN moving statistics.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { ModelRegistry, ScheduleRegistry, emptyBuildHooks } from '@tricks/core';
import { registerModels, resnetCifar } from '@tricks/models';

type T = { shape: number[]; values: number[] };
const fx = JSON.parse(readFileSync(new URL('../../test/fixtures/parity/small_cnn.json', import.meta.url), 'utf8')) as {
  input: T;
  weights: Record<string, T[]>;
  evalLogits: number[];
  trainLogits: number[];
  afterTrainStep: Record<string, { movingMean: number[]; movingVariance: number[] }>;
};

const maxDiff = (a: ArrayLike<number>, b: number[]) => {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('parity twin: its small-cnn equals tricks small-cnn (fixtures/parity)', () => {
  let model: LayersModel;
  before(async () => {
    await tf.setBackend('wasm');
    const registry = registerModels(new ModelRegistry());
    model = registry.build('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, options: { width: 2 } }, emptyBuildHooks());
    for (const [name, ws] of Object.entries(fx.weights)) model.getLayer(name).setWeights(ws.map((w) => tf.tensor(w.values, w.shape)));
  });
  after(() => model.dispose());

  it('the same layers with the same weight shapes', () => {
    const withWeights = model.layers.filter((l) => l.getWeights().length).map((l) => l.name);
    expect(withWeights).to.deep.equal(Object.keys(fx.weights));
  });

  it('evaluation mode: the same logits', () => {
    const x = tf.tensor(fx.input.values, fx.input.shape);
    const y = model.predict(x) as tf.Tensor;
    expect(maxDiff(y.dataSync(), fx.evalLogits)).to.be.below(1e-4);
    tf.dispose([x, y]);
  });

  it('training mode: the same logits (batch statistics) and the same BN moving statistics after one pass', () => {
    const x = tf.tensor(fx.input.values, fx.input.shape);
    const y = model.apply(x, { training: true }) as tf.Tensor;
    expect(maxDiff(y.dataSync(), fx.trainLogits)).to.be.below(1e-4);
    for (const [bn, want] of Object.entries(fx.afterTrainStep)) {
      const [, , mean, variance] = model.getLayer(bn).getWeights();
      expect(maxDiff(mean.dataSync(), want.movingMean), `${bn} moving mean`).to.be.below(1e-5);
      // tfjs-layers averages the biased batch variance, torch the unbiased one: N/(N-1) with N = 6 x 28 x 28 (bn1)
      expect(maxDiff(variance.dataSync(), want.movingVariance), `${bn} moving variance`).to.be.below(1e-3);
    }
    tf.dispose([x, y]);
  });
});

describe("parity twin: its CIFAR ResNet equals tricks' resnet-cifar (fixtures/parity/resnet8.json)", () => {
  it('ResNet-8 on fixed weights: the same layers and the same evaluation logits (TF same padding, projection shortcuts)', async () => {
    await tf.setBackend('wasm');
    const rx = JSON.parse(readFileSync(new URL('../../test/fixtures/parity/resnet8.json', import.meta.url), 'utf8')) as typeof fx & {
      depth: number;
    };
    const model = resnetCifar(rx.depth, { inputShape: [28, 28, 1], numClasses: 10 }, emptyBuildHooks());
    const withWeights = model.layers.filter((l) => l.getWeights().length).map((l) => l.name);
    expect([...withWeights].sort()).to.deep.equal(Object.keys(rx.weights).sort());
    for (const [name, ws] of Object.entries(rx.weights)) model.getLayer(name).setWeights(ws.map((w) => tf.tensor(w.values, w.shape)));
    const x = tf.tensor(rx.input.values, rx.input.shape);
    const y = model.predict(x) as tf.Tensor;
    expect(maxDiff(y.dataSync(), rx.evalLogits)).to.be.below(1e-3);
    tf.dispose([x, y]);
    model.dispose();
  });
});

describe("parity twin: its learning-rate schedules are tricks' closed forms (core/lab/py/parity_twin.py schedule())", () => {
  const python = process.env.TORCH_PYTHON ?? '/usr/bin/python3';
  const cases = [
    { name: 'onecycle' },
    { name: 'onecycle', maxLr: 0.2, pctStart: 0.25, divFactor: 10, finalDivFactor: 100 },
    { name: 'cosine' },
    { name: 'cosine', warmupEpochs: 1.5, warmupLr: 0.001, etaMin: 0.002 },
  ];
  const [base, stepsPerEpoch, totalSteps] = [0.05, 7, 30];
  it('onecycle (defaults and every option) and cosine with warmup and etaMin: the same lr at every step', function () {
    this.timeout(30000);
    const script = [
      'import json, sys; sys.path.insert(0, "core/lab/py"); import parity_twin as P',
      'cases = json.loads(sys.argv[1])',
      `print(json.dumps([[P.schedule(c["name"], c, ${base}, s, ${totalSteps}, ${stepsPerEpoch}) for s in range(${totalSteps + 2})] for c in cases]))`,
    ].join('\n');
    const r = spawnSync(python, ['-c', script, JSON.stringify(cases)], { cwd: new URL('../../../../', import.meta.url), encoding: 'utf8' });
    if (r.error) return this.skip(); // no python for the twin on this machine
    expect(r.status, r.stderr).to.equal(0);
    const twin = JSON.parse(r.stdout) as number[][];
    const registry = new ScheduleRegistry();
    cases.forEach((c, i) => {
      const lr = registry.create(c);
      const want = Array.from({ length: totalSteps + 2 }, (_, step) => lr(base, { step, stepsPerEpoch, totalSteps }));
      expect(maxDiff(twin[i], want), JSON.stringify(c)).to.be.below(1e-12);
    });
  });
});
