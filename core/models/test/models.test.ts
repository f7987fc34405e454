// The model zoo: parameter counts and multiply-accumulates against torchvision (fixtures/models/reference.json,
// made by make_fixtures.py), a forward pass, gradients to every trainable weight and a save/load round trip for
// every backbone on tiny inputs, the custom layers against PyTorch, and the block/neck hooks.
// The whole file takes about 40 s alone on 2 cores; the generous timeouts are for a machine shared with trainings.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import { registerWasmTrainingKernels } from '@tricks/backend-wasm';
import { ModelRegistry, emptyBuildHooks, fileHandler, type BlockInfo, type NeckInfo } from '@tricks/core';
import { countParams, modelCost } from '../src/flops.js';
import { GroupedConv2D, HardSigmoid, HardSwish, StochasticDepth, WindowAttention, groupedConv2d, windowGeometry } from '../src/runtime.js';
import { registerModels } from '../src/register.js';

const ref = JSON.parse(readFileSync(new URL('../../test/fixtures/models/reference.json', import.meta.url), 'utf8'));
const registry = registerModels(new ModelRegistry());

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// Every suite sets the backend in its own `before`: a root-level hook runs once before all files' tests, so a
// suite of another file that switches to cpu (models-cli does) would leave these on the 10x slower cpu backend.
async function onWasm(): Promise<void> {
  registerWasmTrainingKernels();
  await tf.setBackend('wasm');
}

describe('model zoo: parameter counts and multiply-accumulates at 224x224, 1000 classes (torchvision 0.14)', function () {
  before(onWasm);
  this.timeout(60000);
  const cases: [string, string][] = [
    ['resnet18', 'resnet18'],
    ['resnet34', 'resnet34'],
    ['resnet50-b', 'resnet50-b'],
    ['resnet50-d', 'resnet50-d'],
    ['resnext50-32x4d', 'resnext50-32x4d'],
    ['mobilenetv3-large', 'mobilenetv3-large'],
    ['mobilenetv3-small', 'mobilenetv3-small'],
    ['efficientnet-b0', 'efficientnet-b0'],
    ['swin-t', 'swin-t'],
  ];
  for (const [name, key] of cases) {
    it(`${name}: ${ref.params[key]} parameters, ${(ref.macs[key] / 1e9).toFixed(3)} GMACs`, () => {
      const m = registry.build(name, { inputShape: [224, 224, 3], numClasses: 1000 });
      try {
        const cost = modelCost(m);
        expect(cost.params).to.equal(ref.params[key]);
        expect(countParams(m)).to.equal(ref.params[key]);
        expect(Math.abs(cost.macs - ref.macs[key]) / ref.macs[key]).to.be.below(1e-3);
        expect(m.outputs[0].shape).to.deep.equal([null, 1000]);
      } finally {
        m.dispose();
      }
    });
  }

  it('ResNet-50 (A: stride on the 1x1) has the parameters of ResNet-50-B and fewer MACs; C adds the deep stem', () => {
    const a = registry.build('resnet50', { inputShape: [224, 224, 3], numClasses: 1000 });
    const c = registry.build('resnet50-c', { inputShape: [224, 224, 3], numClasses: 1000 });
    try {
      const ca = modelCost(a);
      const cc = modelCost(c);
      expect(ca.params).to.equal(ref.params['resnet50-b']);
      expect(ca.macs).to.be.below(ref.macs['resnet50-b'] * 0.96);
      expect(c.getLayer('stem3_conv')).to.exist;
      expect(cc.params).to.be.above(ca.params);
      expect(cc.layers.some((l) => l.className === 'AveragePooling2D')).to.equal(false);
    } finally {
      a.dispose();
      c.dispose();
    }
  });
});

describe('model zoo: every backbone on a tiny input', function () {
  before(onWasm);
  this.timeout(60000);
  // stochastic depth off, so that no branch is dropped by chance while we look for weights without a gradient
  const noDrop: Record<string, Record<string, unknown>> = {
    'efficientnet-b0': { stochasticDepth: 0 },
    'swin-t': { stochasticDepth: 0 },
    'swin-cifar': { stochasticDepth: 0 },
  };
  // [name, input size, blocks through the block hook, stage outputs given to the neck, block kind]; resnet34 and
  // resnet50 share resnet18's and resnet50-d's code paths, and are checked above by their counts only.
  const cases: [string, number, number, number, string][] = [
    ['resnet18', 32, 8, 4, 'basic'],
    ['resnet50-d', 32, 16, 4, 'bottleneck'],
    ['resnet18-cifar', 16, 8, 4, 'basic'],
    ['resnext50-32x4d', 32, 16, 4, 'bottleneck'],
    ['mobilenetv3-large', 32, 15, 5, 'mbconv'],
    ['mobilenetv3-small', 32, 11, 4, 'mbconv'],
    ['efficientnet-b0', 32, 16, 5, 'mbconv'],
    ['swin-t', 32, 12, 4, 'swin'],
    ['swin-cifar', 32, 10, 3, 'swin'],
  ];
  for (const [name, size, blocks, stages, kind] of cases) {
    it(`${name} (${size}x${size}): ${blocks} ${kind} blocks, ${stages} stages; shape, forward, gradients to every weight, save + plain load`, async () => {
      const start = tf.memory().numTensors;
      const hooks = emptyBuildHooks();
      const seen: BlockInfo[] = [];
      let neck: NeckInfo | undefined;
      hooks.block.tap('count', (branch, info) => {
        expect(branch.shape.at(-1)).to.equal(info.outChannels);
        seen.push(info);
        return branch;
      });
      hooks.neck.tap('count', (f, info) => {
        neck = info;
        return f;
      });
      const m = registry.build(name, { inputShape: [size, size, 3], numClasses: 10, options: noDrop[name] }, hooks);
      expect(seen.length).to.equal(blocks);
      expect(seen.every((b) => b.kind === kind && b.model === name)).to.equal(true);
      expect(new Set(seen.map((b) => b.name)).size).to.equal(blocks);
      expect(neck?.stages.length).to.equal(stages);
      const sizes = neck!.stages.map((st) => st.shape[1] as number);
      expect([...sizes].sort((a, b) => b - a)).to.deep.equal(sizes);
      const x = tf.randomNormal([2, size, size, 3], 0, 1, 'float32', 1);
      const y = tf.tidy(() => tf.oneHot(tf.tensor1d([3, 7], 'int32'), 10));
      const dir = mkdtempSync(join(tmpdir(), 'tricks-model-'));
      try {
        expect(m.outputs[0].shape).to.deep.equal([null, 10]);
        const first = m.predict(x) as tf.Tensor;
        expect(first.shape).to.deep.equal([2, 10]);
        expect((await first.data()).every(Number.isFinite)).to.equal(true);
        first.dispose();

        const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
        const { value, grads } = tf.variableGrads(
          () => tf.losses.softmaxCrossEntropy(y, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
          vars,
        );
        expect(Number.isFinite((await value.data())[0])).to.equal(true);
        const sums = tf.tidy(() => tf.stack(vars.map((v) => tf.sum(tf.abs(grads[v.name])))));
        const norms = await sums.data();
        sums.dispose();
        const dead = vars.filter((_, i) => !(norms[i] > 0)).map((v) => v.name);
        expect(dead, 'weights without a gradient').to.deep.equal([]);
        tf.dispose([value, ...Object.values(grads)]);

        // (the training-mode pass moved the BN statistics: predict again before saving)
        const out = m.predict(x) as tf.Tensor;
        const values = await out.data();
        await m.save(fileHandler(dir));
        const loaded = await tfl.loadLayersModel(fileHandler(dir));
        const again = loaded.predict(x) as tf.Tensor;
        expect(maxAbsDiff(await again.data(), values)).to.be.below(1e-5);
        expect(countParams(loaded)).to.equal(countParams(m));
        tf.dispose([out, again]);
        loaded.dispose();
      } finally {
        m.dispose();
        tf.dispose([x, y]);
        rmSync(dir, { recursive: true, force: true });
      }
      expect(tf.memory().numTensors).to.equal(start);
    });
  }
});

describe('model zoo: deployment with @tricks/models/runtime only', function () {
  before(onWasm);
  this.timeout(120000);
  it('a fresh process that imports tfjs and @tricks/models/runtime (nothing else of tricks) loads the models and gets the same outputs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tricks-deploy-'));
    try {
      const x = tf.randomNormal([1, 32, 32, 3], 0, 1, 'float32', 3);
      const xs = Array.from(await x.data());
      const expected: Record<string, number[]> = {};
      const models: [string, Record<string, unknown>][] = [
        ['swin-cifar', { embedDim: 12, depths: [2, 2], heads: [2, 4] }],
        ['mobilenetv3-small', {}],
      ];
      for (const [name, options] of models) {
        const m = registry.build(name, { inputShape: [32, 32, 3], numClasses: 5, options });
        const y = m.predict(x) as tf.Tensor;
        expected[name] = Array.from(await y.data());
        await m.save(fileHandler(join(dir, name)));
        tf.dispose(y);
        m.dispose();
      }
      x.dispose();
      const script = `
        import * as tf from '@tensorflow/tfjs-core';
        import '@tensorflow/tfjs-backend-cpu';
        import * as tfl from '@tensorflow/tfjs-layers';
        import '@tricks/models/runtime';
        import { readFileSync } from 'node:fs';
        await tf.setBackend('cpu');
        const [dir, names, xs] = JSON.parse(process.argv[1]);
        const out = {};
        for (const name of names) {
          const json = JSON.parse(readFileSync(dir + '/' + name + '/model.json', 'utf8'));
          const bin = readFileSync(dir + '/' + name + '/weights.bin');
          const m = await tfl.loadLayersModel({ load: async () => ({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) }) });
          out[name] = Array.from(m.predict(tf.tensor4d(xs, [1, 32, 32, 3])).dataSync());
        }
        console.log(JSON.stringify(out));`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify([dir, models.map((m) => m[0]), xs])], {
        cwd: new URL('../..', import.meta.url).pathname,
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).to.equal(0);
      const got = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number[]>;
      for (const [name] of models) expect(maxAbsDiff(got[name], expected[name]), name).to.be.below(1e-4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('model zoo: block and neck hooks', function () {
  before(onWasm);
  this.timeout(60000);
  it('a block tap can replace the branch (here: scale it by 0, so the blocks become identities)', () => {
    const hooks = emptyBuildHooks();
    hooks.block.tap(
      'zero',
      (branch, info) =>
        tfl.layers
          .multiply({ name: `${info.name}_zero` })
          .apply([
            branch,
            tfl.layers
              .dense({ units: 1, kernelInitializer: 'zeros', useBias: false, trainable: false, name: `${info.name}_z` })
              .apply(branch) as tfl.SymbolicTensor,
          ]) as tfl.SymbolicTensor,
    );
    const m = registry.build('resnet18-cifar', { inputShape: [8, 8, 3], numClasses: 4 }, hooks);
    expect(m.layers.filter((l) => l.name.endsWith('_zero')).length).to.equal(8);
    m.dispose();
  });
});

describe('model zoo: options', function () {
  before(onWasm);
  this.timeout(60000);
  it('zeroGamma starts the last BN of every branch at 0', async () => {
    const m = registry.build('resnet18-cifar', { inputShape: [8, 8, 3], numClasses: 4, options: { zeroGamma: true } });
    const gamma = m.getLayer('s2b1_2_bn').getWeights()[0];
    const other = m.getLayer('s2b1_1_bn').getWeights()[0];
    expect(Array.from(await gamma.data()).every((v) => v === 0)).to.equal(true);
    expect(Array.from(await other.data()).every((v) => v === 1)).to.equal(true);
    m.dispose();
  });

  it('variant d puts an average pool before the 1x1 of each down-sampling shortcut', () => {
    const m = registry.build('resnet50', { inputShape: [32, 32, 3], numClasses: 4, options: { variant: 'd' } });
    expect(m.layers.filter((l) => l.getClassName() === 'AveragePooling2D').map((l) => l.name)).to.deep.equal([
      's2b1_down_pool',
      's3b1_down_pool',
      's4b1_down_pool',
    ]);
    expect((m.getLayer('s2b1_2_conv').getConfig() as { strides: number[] }).strides).to.deep.equal([2, 2]);
    m.dispose();
  });

  it("small-cnn's defaults are PyTorch's: nn.Conv2d/nn.Linear initialization and BatchNorm2d momentum/epsilon (fixtures/models/small_cnn_init.json)", () => {
    const init = JSON.parse(readFileSync(new URL('../../test/fixtures/models/small_cnn_init.json', import.meta.url), 'utf8'));
    const stats = (t: tf.Tensor) => {
      const a = t.dataSync();
      let s = 0,
        s2 = 0,
        mx = 0;
      for (const v of a) {
        s += v;
        s2 += v * v;
        mx = Math.max(mx, Math.abs(v));
      }
      const mean = s / a.length;
      return { mean, std: Math.sqrt(s2 / a.length - mean * mean), maxAbs: mx, n: a.length };
    };
    const build = (options: Record<string, unknown>) =>
      registry.build('small-cnn', { inputShape: [28, 28, 1], numClasses: 10, options: { width: 16, ...options } });
    // pool 20 builds, as the fixture pools 20 torch resets (conv1 alone has 144 weights)
    const models = Array.from({ length: 20 }, () => build({}));
    for (const [key, want] of Object.entries(init.weights as Record<string, { std: number; maxAbs: number }>)) {
      const [layer, kind] = key.split('/');
      const values = models.map((m) => m.getLayer(layer).getWeights()[kind === 'kernel' ? 0 : 1]);
      const got = stats(tf.concat(values.map((v) => tf.reshape(v, [-1]))));
      // U(-b, b): std b/sqrt(3), max just under b; the spread of 20 x (10..200k) draws is well inside 10%
      expect(got.std / want.std, `${key} std ${got.std} vs torch ${want.std}`).to.be.within(0.9, 1.1);
      expect(got.maxAbs, `${key} max |w|`).to.be.at.most(want.maxAbs * 1.02);
      expect(got.maxAbs, `${key} max |w|`).to.be.at.least(want.maxAbs * 0.8);
    }
    for (const name of ['bn1', 'bn2']) {
      const c = models[0].getLayer(name).getConfig() as { momentum: number; epsilon: number };
      expect(c.momentum, name).to.be.closeTo(init.batchNorm.momentum, 1e-12);
      expect(c.epsilon, name).to.be.closeTo(init.batchNorm.epsilon, 1e-12);
    }
    models.forEach((m) => m.dispose());
    // the previous model on request: tfjs-layers' Glorot kernels, zero biases, BN 0.99 / 1e-3
    const old = build({ init: 'glorot', bnMomentum: 0.99, bnEpsilon: 0.001 });
    expect(stats(old.getLayer('fc1').getWeights()[1]).maxAbs).to.equal(0);
    expect(stats(old.getLayer('fc1').getWeights()[0]).maxAbs).to.be.above(init.weights['fc1/kernel'].maxAbs * 2);
    expect((old.getLayer('bn1').getConfig() as { momentum: number }).momentum).to.equal(0.99);
    old.dispose();
    expect(() => build({ init: 'xavier' })).to.throw(/options.init must be torch or glorot/);
    expect(() => build({ bnMomentum: 1 })).to.throw(/options.bnMomentum/);
  });

  it('small-cnn: the flattened head up to 64 px (counts as before), global average pooling above (no 25.7M-weight dense layer)', () => {
    const build = (side: number, c: number, width: number, numClasses = 10, head?: string) =>
      registry.build('small-cnn', { inputShape: [side, side, c], numClasses, options: { width, ...(head ? { head } : {}) } });
    // the counts of the flatten-only small-cnn, measured on main before the change
    for (const [side, c, width, params] of [
      [28, 1, 32, 421930],
      [32, 3, 32, 545386],
      [28, 1, 8, 103090],
      [64, 3, 32, 2118250],
    ]) {
      const m = build(side, c, width);
      expect(m.countParams(), `${side}x${side}x${c} width ${width}`).to.equal(params);
      expect(m.layers.map((l) => l.name))
        .to.include('flatten')
        .and.not.include('gap');
      m.dispose();
    }
    const big = build(224, 3, 32);
    expect(big.countParams()).to.equal(29290); // 25,711,210 flattened
    expect(big.layers.map((l) => l.name))
      .to.include('gap')
      .and.not.include('flatten');
    expect(big.outputs[0].shape).to.deep.equal([null, 10]);
    big.dispose();
    const forced = build(32, 3, 32, 10, 'gap');
    expect(forced.countParams()).to.equal(29290);
    forced.dispose();
    expect(() => build(32, 3, 32, 10, 'pool')).to.throw(/options\.head must be auto, flatten or gap/);
  });

  it("padding 'torch' pads every strided layer symmetrically (ZeroPadding2D + valid), same weights; other outputs than 'same'", async () => {
    for (const name of ['resnet18', 'resnet50-d', 'resnext50-32x4d', 'mobilenetv3-small', 'efficientnet-b0']) {
      const spec = { inputShape: [32, 32, 3] as [number, number, number], numClasses: 4 };
      const same = registry.build(name, spec);
      const torch = registry.build(name, { ...spec, options: { padding: 'torch' } });
      expect(countParams(torch), name).to.equal(countParams(same));
      expect(torch.outputs[0].shape).to.deep.equal(same.outputs[0].shape);
      expect(same.layers.some((l) => l.getClassName() === 'ZeroPadding2D')).to.equal(false);
      // every strided layer with an odd kernel > 1 reads a ZeroPadding2D of k/2 and pads 'valid' (ResNet-D's 2x2
      // average pool keeps 'same': at stride 2 it equals timm's AvgPool2d(2, ceil_mode=True, count_include_pad=False))
      const strided = torch.layers.filter((l) => {
        const c = l.getConfig() as { strides?: number | number[]; kernelSize?: number | number[]; poolSize?: number[] };
        const s = [c.strides ?? 1].flat()[0];
        const k = [c.kernelSize ?? c.poolSize ?? 1].flat()[0];
        return s > 1 && k % 2 === 1 && k > 1;
      });
      expect(strided.length, name).to.be.above(2);
      for (const l of strided) {
        const c = l.getConfig() as { padding: string; kernelSize?: number | number[]; poolSize?: number[] };
        const k = [c.kernelSize ?? c.poolSize].flat()[0]!;
        const prev = l.inboundNodes[0].inboundLayers[0];
        expect(c.padding, l.name).to.equal('valid');
        expect(prev.getClassName(), l.name).to.equal('ZeroPadding2D');
        expect((prev.getConfig() as { padding: number[][] }).padding, l.name).to.deep.equal([
          [Math.floor(k / 2), Math.floor(k / 2)],
          [Math.floor(k / 2), Math.floor(k / 2)],
        ]);
      }
      torch.setWeights(same.getWeights());
      const x = tf.randomNormal([1, 32, 32, 3], 0, 1, 'float32', 7);
      const [a, b] = [same.predict(x) as tf.Tensor, torch.predict(x) as tf.Tensor];
      const scale = Math.max(...Array.from(await a.data(), Math.abs));
      expect(maxAbsDiff(await a.data(), await b.data()) / scale, name).to.be.above(1e-3);
      tf.dispose([x, a, b]);
      same.dispose();
      torch.dispose();
    }
    expect(() => registry.build('resnet18', { inputShape: [32, 32, 3], numClasses: 4, options: { padding: 'symmetric' } })).to.throw(
      /option "padding" is "symmetric"/,
    );
  });

  it('a wrong option is a user error naming the option', () => {
    expect(() => registry.build('resnet50', { inputShape: [32, 32, 3], numClasses: 4, options: { variant: 'e' } })).to.throw(/variant/);
    expect(() => registry.build('swin-cifar', { inputShape: [32, 32, 3], numClasses: 4, options: { windw: 4 } })).to.throw(/windw/);
  });
});

describe('model zoo: custom layers against PyTorch', function () {
  before(onWasm);
  this.timeout(60000);
  it('GroupedConv2D: the depthwise, split and dense implementations equal torch.nn.Conv2d(groups=4)', async () => {
    const g = ref.grouped_conv;
    const x = tf.tensor4d(g.x, g.x_shape);
    const w = tf.tensor4d(g.kernel, g.kernel_shape);
    for (const impl of ['depthwise', 'split', 'dense'] as const) {
      const y = groupedConv2d(x, w, g.groups, g.stride, impl);
      expect(y.shape).to.deep.equal(g.y_shape);
      expect(maxAbsDiff(await y.data(), g.y), impl).to.be.below(1e-4);
      y.dispose();
    }
    // and as a layer, with its gradient
    const layer = new GroupedConv2D({ filters: g.filters, kernelSize: 3, strides: g.stride, groups: g.groups });
    const inp = tfl.input({ shape: g.x_shape.slice(1) });
    const m = tfl.model({ inputs: inp, outputs: layer.apply(inp) as tfl.SymbolicTensor });
    layer.setWeights([w]);
    expect(maxAbsDiff(await (m.predict(x) as tf.Tensor).data(), g.y)).to.be.below(1e-4);
    const grads = ['depthwise', 'split', 'dense'].map((impl) => {
      layer.impl = impl as 'depthwise';
      return tf.grad((k: tf.Tensor) => tf.sum(tf.square(groupedConv2d(x, k as tf.Tensor4D, g.groups, g.stride, layer.impl))))(w);
    });
    expect(maxAbsDiff(await grads[0].data(), await grads[1].data())).to.be.below(1e-3);
    expect(maxAbsDiff(await grads[0].data(), await grads[2].data())).to.be.below(1e-3);
    tf.dispose([x, w, ...grads]);
    m.dispose();
  });

  it('WindowAttention equals torchvision ShiftedWindowAttention (6x6 map padded to 8x8, window 4, shift 2)', async () => {
    const r = ref.window_attention;
    const layer = new WindowAttention({ numHeads: r.heads, windowSize: r.window, shiftSize: r.shift });
    const inp = tfl.input({ shape: r.x_shape.slice(1) });
    const m = tfl.model({ inputs: inp, outputs: layer.apply(inp) as tfl.SymbolicTensor });
    const shapes = layer.getWeights().map((t) => t.shape);
    layer.setWeights(r.weights.map((v: number[], i: number) => tf.tensor(v, shapes[i])));
    const y = m.predict(tf.tensor4d(r.x, r.x_shape)) as tf.Tensor;
    expect(maxAbsDiff(await y.data(), r.y)).to.be.below(1e-4);
    m.dispose();
  });

  it('the shifted-window mask and relative index follow torchvision (shift dropped when the window covers the map)', () => {
    const g = windowGeometry(8, 8, 4, 2);
    expect(g.shift).to.equal(2);
    expect(g.index[0]).to.equal(3 * 7 + 3); // (0,0) to (0,0): the table's centre
    expect(g.mask!.filter((v) => v !== 0).length).to.be.above(0);
    // window 0 (top-left) never crosses a region boundary
    expect(Array.from(g.mask!.slice(0, 256)).every((v) => v === 0)).to.equal(true);
    expect(windowGeometry(4, 4, 7, 3)).to.include({ padH: 7, shift: 0 });
  });

  it('a whole tiny Swin (patch embed, shifted blocks, patch merging, head) equals torchvision SwinTransformer', async () => {
    const r = ref.swin_tiny;
    const m = registry.build('swin-cifar', { inputShape: r.x_shape.slice(1), numClasses: r.classes, options: r.options });
    for (const [name, values] of Object.entries(r.layers as Record<string, number[][]>)) {
      const layer = m.getLayer(name);
      const shapes = layer.getWeights().map((t) => t.shape);
      expect(shapes.length, name).to.equal(values.length);
      layer.setWeights(values.map((v, i) => tf.tensor(v, shapes[i])));
    }
    expect(m.trainableWeights.length).to.equal(Object.values(r.layers as Record<string, number[][]>).reduce((n, v) => n + v.length, 0));
    const y = m.predict(tf.tensor4d(r.x, r.x_shape)) as tf.Tensor;
    expect(maxAbsDiff(await y.data(), r.y)).to.be.below(1e-4);
    m.dispose();
  });

  it('HardSwish and HardSigmoid equal nn.Hardswish and nn.Hardsigmoid', async () => {
    const a = ref.activations;
    const x = tf.tensor1d(a.x);
    const hs = new HardSwish({}).apply(x) as tf.Tensor;
    const hg = new HardSigmoid({}).apply(x) as tf.Tensor;
    expect(maxAbsDiff(await hs.data(), a.hswish)).to.be.below(1e-6);
    expect(maxAbsDiff(await hg.data(), a.hsigmoid)).to.be.below(1e-6);
    tf.dispose([x, hs, hg]);
  });

  it("HardSwish and HardSigmoid: the wasm backend's one-pass kernels give the composite's values and gradients (cpu)", async () => {
    expect(tf.getBackend()).to.equal('wasm');
    expect(tf.getKernel('TricksHardSwish', 'wasm'), 'fused kernels registered').to.not.equal(undefined);
    const xs = [...Array.from({ length: 97 }, (_, i) => (i - 48) / 6), -3, 3, 0];
    const grads = async (backend: string) => {
      await tf.setBackend(backend);
      const x = tf.tensor4d(xs, [1, 1, xs.length, 1]);
      const out: number[][] = [];
      for (const layer of [new HardSwish({}), new HardSigmoid({})]) {
        const [y, g] = tf.tidy(() => {
          const f = (t: tf.Tensor) => tf.mul(layer.apply(t) as tf.Tensor, tf.reshape(tf.range(0, xs.length), [1, 1, xs.length, 1]));
          return [layer.apply(x) as tf.Tensor, tf.grad(f)(x)];
        });
        out.push(Array.from(await y.data()), Array.from(await g.data()));
        tf.dispose([y, g]);
      }
      x.dispose();
      return out;
    };
    const onCpu = await grads('cpu');
    const onWasm = await grads('wasm');
    onCpu.forEach((ref, i) => expect(maxAbsDiff(onWasm[i]!, ref), `output ${i}`).to.be.below(1e-5));
  });

  it('StochasticDepth drops whole samples at the given rate and rescales the rest; identity at inference', async () => {
    const layer = new StochasticDepth({ rate: 0.25 });
    const x = tf.ones([4000, 2, 2, 3]);
    const train = layer.apply(x, { training: true }) as tf.Tensor;
    const v = await train.data();
    let dropped = 0;
    for (let s = 0; s < 4000; s++) {
      const row = v.slice(s * 12, (s + 1) * 12);
      expect(row.every((e) => e === row[0])).to.equal(true);
      if (row[0] === 0) dropped++;
      else expect(row[0]).to.be.closeTo(1 / 0.75, 1e-6);
    }
    expect(dropped / 4000).to.be.closeTo(0.25, 0.03);
    const infer = layer.apply(x) as tf.Tensor;
    expect(Array.from(await infer.data()).every((e) => e === 1)).to.equal(true);
    tf.dispose([x, train, infer]);
  });
});
