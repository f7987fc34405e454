import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { Adam, AdamW, SGD, type TricksOptimizer } from '../src/optim/optimizer.js';
import { OptimizerRegistry } from '../src/optim/registry.js';
import { clipByGlobalNorm, globalNorm } from '../src/optim/clip.js';
import { TricksError } from '../src/hooks/errors.js';

const fixture = (f: string) => JSON.parse(readFileSync(new URL(`../../test/fixtures/optim/${f}`, import.meta.url), 'utf8'));

/** |a - b| <= rtol * |b| + atol, elementwise; atol covers entries that are near 0. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-5, atol = 1e-7, what = '') {
  expect(actual.length, `${what} length`).to.equal(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const b = expected[i]!;
    if (!(Math.abs(a - b) <= rtol * Math.abs(b) + atol)) throw new Error(`${what}[${i}]: ${a} != ${b} (rtol ${rtol}, atol ${atol})`);
  }
}

interface OptCase {
  name: string;
  options: Record<string, number | boolean>;
  biasDecay: boolean;
  states: { w: number[]; b: number[] }[];
}

describe('optimizers against torch.optim (fixtures/optim/optimizers.json)', () => {
  before(async () => {
    await tf.setBackend('wasm');
  });
  const fx = fixture('optimizers.json') as {
    w0: number[];
    b0: number[];
    wShape: [number, number];
    grads: { w: number[]; b: number[] }[];
    lrs: number[];
    cases: OptCase[];
  };
  const registry = new OptimizerRegistry();
  let id = 0;

  function setup(c: OptCase) {
    id++;
    const w = tf.variable(tf.tensor2d(fx.w0, fx.wShape), true, `optw${id}/kernel`);
    const b = tf.variable(tf.tensor1d(fx.b0), true, `optw${id}/bias`);
    const opt = registry.create(c.name, { lr: fx.lrs[0]!, ...c.options });
    if (!c.biasDecay) opt.decayFilter = (n) => n !== b.name;
    return { w, b, opt };
  }

  function step(opt: TricksOptimizer, w: tf.Variable, b: tf.Variable, s: number) {
    opt.setLearningRate(fx.lrs[s]!);
    const gw = tf.tensor2d(fx.grads[s]!.w, fx.wShape);
    const gb = tf.tensor1d(fx.grads[s]!.b);
    opt.applyGradients({ [w.name]: gw, [b.name]: gb });
    tf.dispose([gw, gb]);
  }

  for (const c of fx.cases) {
    const label = `${c.name} ${JSON.stringify(c.options)}${c.biasDecay ? '' : ', no decay on the bias'}`;
    it(`${label}: ${fx.lrs.length} steps with a changing lr match PyTorch`, () => {
      const { w, b, opt } = setup(c);
      for (let s = 0; s < fx.lrs.length; s++) {
        step(opt, w, b, s);
        expectClose(w.dataSync(), c.states[s]!.w, 1e-5, 1e-7, `step ${s} w`);
        expectClose(b.dataSync(), c.states[s]!.b, 1e-5, 1e-7, `step ${s} b`);
      }
      opt.dispose();
      tf.dispose([w, b]);
    });
  }

  it('getWeights/setWeights mid-run: a restored optimizer continues exactly (AdamW, SGD-Nesterov)', async () => {
    for (const c of [fx.cases[0]!, fx.cases[4]!]) {
      const { w, b, opt } = setup(c);
      for (let s = 0; s < 3; s++) step(opt, w, b, s);
      const saved = await opt.getWeights();
      // a fresh optimizer (new slot variables) restores the slots and the iteration count
      const restored = registry.create(c.name, { lr: 1, ...c.options });
      if (!c.biasDecay) restored.decayFilter = opt.decayFilter;
      await restored.setWeights(saved.map(({ name, tensor }) => ({ name, tensor: tf.clone(tensor) })));
      opt.dispose();
      expect(restored.iterations).to.equal(3);
      for (let s = 3; s < fx.lrs.length; s++) step(restored, w, b, s);
      expectClose(w.dataSync(), c.states.at(-1)!.w, 1e-5, 1e-7, `${c.name} restored w`);
      expectClose(b.dataSync(), c.states.at(-1)!.b, 1e-5, 1e-7, `${c.name} restored b`);
      restored.dispose();
      tf.dispose([w, b]);
    }
  });

  it('does not leak tensors across steps nor across repeated getWeights (checkpoints)', async () => {
    const { w, b, opt } = setup(fx.cases[4]!);
    step(opt, w, b, 0);
    await opt.getWeights();
    const n = tf.memory().numTensors;
    for (let s = 1; s < 5; s++) {
      step(opt, w, b, s);
      await opt.getWeights();
    }
    expect(tf.memory().numTensors).to.equal(n);
    opt.dispose();
    tf.dispose([w, b]);
  });

  it('registry: adamw is the decoupled AdamW class with PyTorch default decay 0.01; serializable class names', () => {
    const o = registry.create('adamw', { lr: 0.001 });
    expect(o).to.be.instanceOf(AdamW);
    expect(o.weightDecay).to.equal(0.01);
    expect((o as AdamW).decoupled).to.equal(true);
    expect(o.getClassName()).to.equal('TricksAdamW');
    expect(new SGD({ lr: 0.1 }).getClassName()).to.equal('TricksSGD');
    expect(registry.create('adam', { lr: 0.1 })).to.be.instanceOf(Adam);
  });

  it('rejects bad options with a TricksError naming the option', () => {
    expect(() => registry.create('sgd', { lr: 0.1, clipNorm: 0 })).to.throw(TricksError, /optimizer.clipNorm/);
    expect(() => registry.create('sgd', { lr: 0.1, nesterov: true })).to.throw(TricksError, /optimizer.nesterov/);
    expect(() => registry.create('sgd', { lr: -1 })).to.throw(TricksError, /optimizer.lr/);
    expect(() => registry.create('adam', { lr: 0.1, beta2: 1 })).to.throw(TricksError, /optimizer.beta2/);
    expect(() => registry.create('sgd', { lr: 0.1, weightDecay: -0.1 })).to.throw(TricksError, /optimizer.weightDecay/);
    expect(() => registry.create('adamx', { lr: 0.1 })).to.throw(TricksError, /did you mean "adam/);
  });
});

describe('clipByGlobalNorm against torch.nn.utils.clip_grad_norm_ (fixtures/optim/clip.json)', () => {
  before(async () => {
    await tf.setBackend('wasm');
  });
  for (const c of fixture('clip.json') as {
    maxNorm: number;
    a: number[];
    c: number[];
    aShape: [number, number];
    norm: number;
    clippedA: number[];
    clippedC: number[];
  }[]) {
    it(`maxNorm ${c.maxNorm}, norm ${c.norm.toFixed(3)}`, () => {
      const before = tf.memory().numTensors;
      const grads = { a: tf.tensor2d(c.a, c.aShape), c: tf.tensor1d(c.c) };
      const norm = globalNorm(grads);
      expectClose(norm.dataSync(), [c.norm], 1e-5, 0, 'norm');
      const out = clipByGlobalNorm(grads, c.maxNorm);
      expectClose(out.a!.dataSync(), c.clippedA, 1e-5, 1e-7, 'a');
      expectClose(out.c!.dataSync(), c.clippedC, 1e-5, 1e-7, 'c');
      tf.dispose([norm, ...Object.values(grads), ...Object.values(out)]);
      expect(tf.memory().numTensors).to.equal(before);
    });
  }
  it('rejects a non-positive maxNorm', () => {
    expect(() => clipByGlobalNorm({}, 0)).to.throw(TricksError, /clipNorm/);
  });
});
