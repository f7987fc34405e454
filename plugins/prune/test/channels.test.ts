// The channel dependency graph and shrinking on the model zoo: a model with the removed channels masked (zeroed)
// must compute what the physically smaller model computes. Residual adds, SE modules, depthwise convs,
// concatenation and Flatten.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect } from 'chai';
import { ModelRegistry, Rng } from '@tricks/core';
import { countParams, modelCost, registerModels } from '@tricks/models';
import { applyMasks, channelGraph, shrinkModel, type ChannelGraph, type KeepPlan } from '../src/channels.js';
import { useTestBackend } from '@tricks/helper-plugin-test-runner';

const registry = registerModels(new ModelRegistry());
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

/** Random BN statistics and gammas, so that folding and masking are tested on non-trivial values. */
function randomizeBn(model: tfl.LayersModel, rng: Rng): void {
  tf.tidy(() => {
    for (const w of model.weights) {
      const n = w.originalName;
      const size = w.shape.reduce<number>((a, b) => a * (b ?? 1), 1);
      const vals = Float32Array.from({ length: size }, () => rng.uniform(0.5, 1.5));
      if (/moving_variance|gamma/.test(n)) (w.read() as tf.Variable).assign(tf.tensor(vals, w.shape as number[]));
      if (/moving_mean|beta/.test(n))
        (w.read() as tf.Variable).assign(
          tf.tensor(
            vals.map((v) => v - 1),
            w.shape as number[],
          ),
        );
    }
  });
}

/** Keeps a random ~60% of every prunable group. */
function randomPlan(graph: ChannelGraph, rng: Rng): KeepPlan {
  const plan: KeepPlan = new Map();
  for (const g of graph.groups) {
    if (g.fixed.length) continue;
    const n = Math.max(1, Math.round(g.size * 0.6));
    plan.set(
      g.id,
      Array.from(rng.permutation(g.size).slice(0, n)).sort((a, b) => a - b),
    );
  }
  return plan;
}

async function checkShrink(model: tfl.LayersModel, x: tf.Tensor) {
  const rng = new Rng(3);
  randomizeBn(model, rng);
  const graph = channelGraph(model);
  const plan = randomPlan(graph, rng);
  expect(plan.size).to.be.greaterThan(0);
  applyMasks(model, graph, plan);
  const small = await shrinkModel(model, graph, plan);
  const a = model.predict(x) as tf.Tensor;
  const b = small.predict(x) as tf.Tensor;
  const d = maxDiff(a.dataSync(), b.dataSync());
  expect(d, 'masked vs shrunk output').to.be.below(1e-4);
  expect(countParams(small)).to.be.below(countParams(model));
  expect(modelCost(small).macs).to.be.below(modelCost(model).macs);
  tf.dispose([a, b]);
  small.dispose();
  return { graph, plan };
}

describe('prune/channels: channel dependencies and shrinking', function () {
  this.timeout(60000);
  before(() => useTestBackend());

  it('resnet20: residual adds couple the stem with every block output of a stage; shrunk == masked', async () => {
    const m = registry.build('resnet20', { inputShape: [16, 16, 3], numClasses: 10 });
    const graph = channelGraph(m);
    const groupOf = (l: string) => graph.groups.find((g) => g.producers.includes(l))!;
    const s1 = groupOf('stem_conv');
    expect(s1.producers).to.include.members(['stem_conv', 's1b1_2_conv', 's1b2_2_conv', 's1b3_2_conv']);
    expect(s1.members).to.include.members(['stem_bn', 's1b3_2_bn']);
    expect(groupOf('s2b1_down_conv').producers).to.include.members(['s2b1_2_conv', 's2b2_2_conv']);
    expect(groupOf('s1b1_1_conv').producers).to.deep.equal(['s1b1_1_conv']); // inside a block: free
    expect(groupOf('s1b1_1_conv').fixed).to.deep.equal([]);
    expect(groupOf('logits').fixed).to.include('model output');
    expect(graph.consumers.get('logits')!.segments).to.have.length(1);
    await checkShrink(m, tf.randomUniform([2, 16, 16, 3]));
    m.dispose();
  });

  it('mobilenetv3-small: depthwise convs and SE modules (reshape, multiply) follow their group; shrunk == masked', async () => {
    const m = registry.build('mobilenetv3-small', { inputShape: [32, 32, 3], numClasses: 5 });
    const graph = channelGraph(m);
    const dw = graph.groups.find((g) => g.members.includes('b4_dw_conv'))!;
    expect(dw.producers).to.include.members(['b4_expand_conv', 'b4_se_fc2']);
    expect(dw.reshapes).to.deep.equal(['b4_se_reshape']);
    expect(dw.fixed).to.deep.equal([]);
    const { plan } = await checkShrink(m, tf.randomUniform([2, 32, 32, 3]));
    expect(plan.get(dw.id)!.length).to.be.below(dw.size);
    m.dispose();
  });

  it('small-cnn: Flatten repeats a channel over positions for the dense layer; ignore fixes a layer', async () => {
    const m = registry.build('small-cnn', { inputShape: [8, 8, 1], numClasses: 3, options: { width: 4 } });
    const graph = channelGraph(m, ['conv1']);
    expect(graph.consumers.get('fc1')).to.deep.include({ channels: 8, repeat: 4 });
    expect(graph.groups.find((g) => g.producers.includes('conv1'))!.fixed).to.deep.equal(['conv1 is ignored']);
    await checkShrink(m, tf.randomUniform([2, 8, 8, 1]));
  });

  it('concatenation places groups side by side; an unknown layer fixes what it touches', async () => {
    const inp = tfl.input({ shape: [8, 8, 2] });
    const a = tfl.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same', name: 'a' }).apply(inp) as tfl.SymbolicTensor;
    const b = tfl.layers.conv2d({ filters: 3, kernelSize: 1, name: 'b' }).apply(inp) as tfl.SymbolicTensor;
    const bb = tfl.layers.batchNormalization({ name: 'b_bn' }).apply(b) as tfl.SymbolicTensor;
    const c = tfl.layers.concatenate({ name: 'cat' }).apply([a, bb]) as tfl.SymbolicTensor;
    const d = tfl.layers
      .conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'd', activation: 'relu' })
      .apply(c) as tfl.SymbolicTensor;
    const e = tfl.layers.permute({ dims: [1, 2, 3], name: 'perm' }).apply(d) as tfl.SymbolicTensor;
    const f = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(e) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 2, name: 'out' }).apply(f) as tfl.SymbolicTensor;
    const m = tfl.model({ inputs: inp, outputs: out });
    const graph = channelGraph(m);
    expect(graph.consumers.get('d')!.segments.map((s) => [s.offset, s.size])).to.deep.equal([
      [0, 5],
      [5, 3],
    ]);
    expect(graph.groups.find((g) => g.producers.includes('d'))!.fixed[0]).to.match(/perm \(Permute\)/);
    await checkShrink(m, tf.randomUniform([2, 8, 8, 2]));
  });
});
