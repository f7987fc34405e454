import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { createHooks, ModelRegistry, SGD, type PluginApi, type TrainContext } from '@tricks/core';
import plugin, { noDecayVariables } from '../src/index.js';
import { registerModels } from '@tricks/models';

const quiet = { info() {}, warn() {}, error() {}, debug() {} } as unknown as TrainContext['logger'];
const short = (n: string) => n.split('/').pop()!.replace(/_\d+$/, '');

describe('no-bias-decay', () => {
  before(async () => {
    await tf.setBackend('wasm');
  });

  it('resnet20: every BatchNorm gamma/beta and every bias, no kernel', () => {
    const m = registerModels(new ModelRegistry()).build('resnet20', { inputShape: [8, 8, 3], numClasses: 10 });
    const ex = noDecayVariables(m);
    const bn = m.layers.filter((l) => l.getClassName() === 'BatchNormalization').length;
    const biases = m.trainableWeights.filter((w) => w.originalName.endsWith('/bias')).length;
    expect(bn).to.be.greaterThan(10);
    expect(ex.size).to.equal(2 * bn + biases);
    for (const w of m.trainableWeights) {
      const kind = short(w.originalName);
      expect(ex.has(w.name), w.name).to.equal(kind !== 'kernel' && kind !== 'depthwise_kernel');
    }
    m.dispose();
  });

  it('decides from layer class and weight name, in nested models, with the options', () => {
    const inner = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [4], units: 3 }), tfl.layers.layerNormalization()] });
    const outer = tfl.sequential({
      layers: [tfl.layers.dense({ inputShape: [4], units: 4, useBias: false }), inner, tfl.layers.dense({ units: 2 })],
    });
    const all = noDecayVariables(outer);
    expect([...all].map(short).sort()).to.deep.equal(['beta', 'bias', 'bias', 'gamma']);
    expect([...noDecayVariables(outer, { bias: true, norm: false })].map(short).sort()).to.deep.equal(['bias', 'bias']);
    expect([...noDecayVariables(outer, { bias: false, norm: true })].map(short).sort()).to.deep.equal(['beta', 'gamma']);
    outer.dispose();
  });

  it('the plugin sets the optimizer decay filter in setup: with zero gradients only decayed weights shrink; teardown restores it', async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.dense({ inputShape: [3], units: 2, biasInitializer: 'ones' }),
        tfl.layers.batchNormalization({ gammaInitializer: 'ones' }),
      ],
    });
    const optimizer = new SGD({ lr: 0.5, weightDecay: 0.1 });
    const original = optimizer.decayFilter;
    const hooks = createHooks();
    plugin.apply({ hooks, config: {} as PluginApi['config'], registerState() {} }, { bias: true, norm: true });
    const ctx = { model, optimizer, logger: quiet } as unknown as TrainContext;
    await hooks.setup.promise(ctx);
    const before = model.trainableWeights.map((w) => Array.from(w.read().dataSync()));
    tf.tidy(() => optimizer.applyGradients(Object.fromEntries(model.trainableWeights.map((w) => [w.name, tf.zerosLike(w.read())]))));
    model.trainableWeights.forEach((w, i) => {
      const after = Array.from(w.read().dataSync());
      const expected = short(w.originalName) === 'kernel' ? before[i]!.map((v) => v * (1 - 0.5 * 0.1)) : before[i]!;
      after.forEach((v, j) => expect(v, `${w.name}[${j}]`).to.be.closeTo(expected[j]!, 1e-6));
    });
    await hooks.teardown.promise(ctx, {});
    expect(optimizer.decayFilter).to.equal(original);
    optimizer.dispose();
    model.dispose();
  });
});
