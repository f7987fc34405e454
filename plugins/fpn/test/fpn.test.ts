import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect } from 'chai';
import { countParams, modelCost, registerModels } from '@tricks/models';
import { createHooks, ModelRegistry, type NeckInfo, type PluginApi, type ResolvedConfig } from '@tricks/core';
import { useTestBackend, runSteps, cleanup, assertNoLeak, assertOptionError, tapsOf } from '@tricks/helper-plugin-test-runner';
import plugin, { fpnNeck, pyramid, type FpnOptions } from '../src/index.js';

const ref = JSON.parse(readFileSync(new URL('../../test/fixtures/reference.json', import.meta.url), 'utf8'));
const registry = registerModels(new ModelRegistry());
const DEFAULTS: FpnOptions = { channels: 128, levels: 3, smooth: true, keepPooled: true, norm: true };

function hooksWith(options: Partial<FpnOptions> = {}) {
  const hooks = createHooks();
  plugin.apply({ hooks, config: {} as ResolvedConfig, registerState() {} } as PluginApi, { ...DEFAULTS, ...options });
  return hooks;
}

describe('fpn', function () {
  this.timeout(60000);
  before(async () => {
    await useTestBackend();
  });

  it('the pyramid equals torchvision.ops.FeaturePyramidNetwork (7x7, 4x4, 2x2 levels)', async () => {
    const inputs = ref.inputs.map((i: { shape: number[] }) => tfl.input({ shape: i.shape.slice(1) }));
    const outs = pyramid(inputs, { channels: ref.channels, smooth: true, norm: false }, 't');
    const m = tfl.model({ inputs, outputs: outs });
    ref.lateral.forEach(([k, b]: number[][], i: number) => {
      const l = m.getLayer(`t_lateral${i + 1}`);
      l.setWeights([tf.tensor(k, l.getWeights()[0].shape), tf.tensor1d(b)]);
    });
    ref.smooth.forEach(([k, b]: number[][], i: number) => {
      const l = m.getLayer(`t_smooth${i + 1}`);
      l.setWeights([tf.tensor(k, l.getWeights()[0].shape), tf.tensor1d(b)]);
    });
    const ys = m.predict(ref.inputs.map((i: { shape: number[]; x: number[] }) => tf.tensor(i.x, i.shape))) as tf.Tensor[];
    for (let i = 0; i < 3; i++) {
      const v = await ys[i].data();
      let d = 0;
      for (let j = 0; j < v.length; j++) d = Math.max(d, Math.abs(v[j] - ref.outputs[i][j]));
      expect(d, `level ${i + 1}`).to.be.below(1e-4);
    }
    tf.dispose(ys);
    m.dispose();
  });

  it('resnet18-cifar + fpn: the parameters and features it should add', () => {
    const plain = registry.build('resnet18-cifar', { inputShape: [16, 16, 3], numClasses: 10 });
    const m = registry.build('resnet18-cifar', { inputShape: [16, 16, 3], numClasses: 10 }, hooksWith());
    const d = 128;
    // lateral 1x1 convs without bias + BN (gamma, beta), smoothing 3x3 convs without bias + BN, wider classifier
    const lateral = [128, 256, 512].reduce((n, c) => n + c * d + 2 * d, 0);
    const smooth = 3 * (9 * d * d + 2 * d);
    expect(countParams(m) - countParams(plain)).to.equal(lateral + smooth + 3 * d * 10);
    const noNorm = registry.build('resnet18-cifar', { inputShape: [16, 16, 3], numClasses: 10 }, hooksWith({ norm: false }));
    expect(countParams(noNorm) - countParams(plain)).to.equal(lateral + smooth - 6 * d + 3 * d * 10); // a bias (d) instead of BN's 2d, 6 convs
    noNorm.dispose();
    expect(m.getLayer('logits').getWeights()[0].shape).to.deep.equal([512 + 3 * d, 10]);
    expect(modelCost(m).macs).to.be.above(modelCost(plain).macs);
    m.dispose();
    plain.dispose();
  });

  const backbones: [string, number][] = [
    ['small-cnn', 16],
    ['resnet20', 16],
    ['resnet18', 32],
    ['mobilenetv3-small', 32],
    ['efficientnet-b0', 32],
    ['swin-cifar', 32],
  ];
  for (const [name, size] of backbones) {
    it(`${name}: builds and runs with fpn (levels 3, keepPooled ${name !== 'small-cnn'})`, async () => {
      let stages = 0;
      const hooks = hooksWith({ channels: 16, keepPooled: name !== 'small-cnn' });
      hooks.neck.tap({ name: 'spy', stage: -1 }, (f: tfl.SymbolicTensor, info: NeckInfo) => ((stages = info.stages.length), f));
      const m = registry.build(name, { inputShape: [size, size, 3], numClasses: 10 }, hooks);
      const levels = Math.min(3, stages);
      expect(m.layers.filter((l) => /_fpn_gap\d$/.test(l.name)).length).to.equal(levels);
      const y = m.predict(tf.randomNormal([1, size, size, 3])) as tf.Tensor;
      expect(y.shape).to.deep.equal([1, 10]);
      expect((await y.data()).every(Number.isFinite)).to.equal(true);
      tf.dispose(y);
      m.dispose();
    });
  }

  it('a neck without 2-D stages is a user error', () => {
    const f = tfl.input({ shape: [8] });
    expect(() => fpnNeck(f, { model: 'x', stages: [tfl.input({ shape: [4] })], name: 'neck' }, DEFAULTS)).to.throw(/fpn: x/);
  });

  it('trains end to end in the trainer (resnet20 on digits): loss finite, no tensor leak', async function () {
    this.timeout(120000); // a real (tiny) training run: seconds alone, much more on a loaded machine
    const run = await runSteps({ plugins: [['fpn', { channels: 16 }]], steps: 4, config: { model: { name: 'resnet20' } } });
    try {
      expect(tapsOf(run.calls, 'neck')).to.deep.equal(['fpn']);
      expect(Number.isFinite(run.result.epochs[0].train_loss)).to.equal(true);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });

  it('rejects a bad option with its name', async () => {
    await assertOptionError('fpn', { levels: 1 }, /levels/);
    await assertOptionError('fpn', { chanels: 4 }, /chanels/);
  });
});
