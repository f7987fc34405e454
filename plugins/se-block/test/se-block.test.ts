import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect } from 'chai';
import { countParams, registerModels } from '@tricks/models';
import { createHooks, ModelRegistry, type BlockInfo, type PluginApi, type ResolvedConfig } from '@tricks/core';
import { useTestBackend, runSteps, cleanup, assertNoLeak, assertOptionError, tapsOf } from '@tricks/helper-plugin-test-runner';
import plugin, { squeezeExcite, squeezeUnits, type SeBlockOptions } from '../src/index.js';

const ref = JSON.parse(readFileSync(new URL('../../test/fixtures/reference.json', import.meta.url), 'utf8'));
const registry = registerModels(new ModelRegistry());
const DEFAULTS: SeBlockOptions = { reduction: 16, minChannels: 8, stages: [] };

/** Build hooks with the plugin applied, as the trainer does. */
function hooksWith(options: Partial<SeBlockOptions> = {}) {
  const hooks = createHooks();
  plugin.apply({ hooks, config: {} as ResolvedConfig, registerState() {} } as PluginApi, { ...DEFAULTS, ...options });
  return hooks;
}

describe('se-block', function () {
  this.timeout(60000);
  before(async () => {
    await useTestBackend();
  });

  it('one SE module equals torchvision.ops.SqueezeExcitation with the same weights', async () => {
    const r = ref.module;
    const input = tfl.input({ shape: r.x_shape.slice(1) });
    const info: BlockInfo = { model: 't', kind: 'basic', stage: 1, index: 0, inChannels: 32, outChannels: 32, name: 'b' };
    const m = tfl.model({ inputs: input, outputs: squeezeExcite(input, info, { ...DEFAULTS, reduction: 8, minChannels: 1 }) });
    m.getLayer('b_seblock_fc1').setWeights([tf.tensor2d(r.fc1_kernel, [32, 4]), tf.tensor1d(r.fc1_bias)]);
    m.getLayer('b_seblock_fc2').setWeights([tf.tensor2d(r.fc2_kernel, [4, 32]), tf.tensor1d(r.fc2_bias)]);
    const y = m.predict(tf.tensor4d(r.x, r.x_shape)) as tf.Tensor;
    const v = await y.data();
    let d = 0;
    for (let i = 0; i < v.length; i++) d = Math.max(d, Math.abs(v[i] - r.y[i]));
    expect(d).to.be.below(1e-5);
    m.dispose();
  });

  it(`SE-ResNet-50 has ${ref.se_resnet50_params} parameters, as the reference (ResNet-50: ${ref.resnet50_params})`, () => {
    const m = registry.build('resnet50', { inputShape: [224, 224, 3], numClasses: 1000 }, hooksWith());
    expect(countParams(m)).to.equal(ref.se_resnet50_params);
    expect(m.layers.filter((l) => l.name.endsWith('_seblock_scale')).length).to.equal(16);
    m.dispose();
  });

  it('option stages limits SE to those stages; reduction and minChannels set the squeeze width', () => {
    const m = registry.build(
      'resnet18-cifar',
      { inputShape: [8, 8, 3], numClasses: 10 },
      hooksWith({ stages: [4], reduction: 128, minChannels: 3 }),
    );
    const se = m.layers.filter((l) => l.name.endsWith('_seblock_fc1'));
    expect(se.map((l) => l.name)).to.deep.equal(['s4b1_seblock_fc1', 's4b2_seblock_fc1']);
    expect((se[0].getConfig() as { units: number }).units).to.equal(4); // 512 / 128
    expect(squeezeUnits(64, { reduction: 128, minChannels: 3 })).to.equal(3);
    m.dispose();
  });

  // every backbone that emits the block hook: [model, input size, blocks]
  const backbones: [string, number, number][] = [
    ['resnet20', 16, 9],
    ['resnet18-cifar', 16, 8],
    ['mobilenetv3-small', 32, 11],
    ['efficientnet-b0', 32, 16],
    ['swin-cifar', 32, 10],
  ];
  for (const [name, size, blocks] of backbones) {
    it(`${name}: SE on all ${blocks} branches, the parameters it should add, a finite forward pass`, async () => {
      const plain = registry.build(name, { inputShape: [size, size, 3], numClasses: 10 });
      const seen: BlockInfo[] = [];
      const hooks = hooksWith();
      hooks.block.tap({ name: 'spy', stage: 1000 }, (b, info) => (seen.push(info), b));
      const m = registry.build(name, { inputShape: [size, size, 3], numClasses: 10 }, hooks);
      expect(m.layers.filter((l) => l.name.endsWith('_seblock_scale')).length).to.equal(blocks);
      const added = seen.reduce((n, b) => {
        const h = squeezeUnits(b.outChannels, DEFAULTS);
        return n + 2 * b.outChannels * h + h + b.outChannels;
      }, 0);
      expect(countParams(m) - countParams(plain)).to.equal(added);
      const y = m.predict(tf.randomNormal([1, size, size, 3])) as tf.Tensor;
      expect(y.shape).to.deep.equal([1, 10]);
      expect((await y.data()).every(Number.isFinite)).to.equal(true);
      tf.dispose(y);
      m.dispose();
      plain.dispose();
    });
  }

  it('a rank-3 token branch pools over tokens; any other shape is a user error', () => {
    const info: BlockInfo = { model: 't', kind: 'x', stage: 1, index: 0, inChannels: 16, outChannels: 16, name: 'tok' };
    const tokens = tfl.input({ shape: [10, 16] });
    expect(squeezeExcite(tokens, info, DEFAULTS).shape).to.deep.equal([null, 10, 16]);
    expect(() => squeezeExcite(tfl.input({ shape: [16] }), { ...info, name: 'flat' }, DEFAULTS)).to.throw(/se-block.*flat/);
  });

  it('trains end to end in the trainer (resnet20 on digits): loss finite, no tensor leak', async function () {
    this.timeout(120000); // a real (tiny) training run: seconds alone, much more on a loaded machine
    const run = await runSteps({ plugins: [['se-block', { reduction: 4 }]], steps: 4, config: { model: { name: 'resnet20' } } });
    try {
      expect(tapsOf(run.calls, 'block').filter((t) => t === 'se-block').length).to.equal(9);
      expect(Number.isFinite(run.result.epochs[0].train_loss)).to.equal(true);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });

  it('rejects a bad option with its name', async () => {
    await assertOptionError('se-block', { reduction: 0 }, /reduction/);
    await assertOptionError('se-block', { reducton: 4 }, /reducton/);
  });
});
