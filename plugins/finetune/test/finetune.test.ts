import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { definePlugin, SGD, STAGE_REPORT, type TrainContext } from '@tricks/core';
import { assertOptionError, cleanup, runSteps, useTestBackend } from '@tricks/helper-plugin-test-runner';
import { groupScales, layerGroups } from '../src/index.js';

/** Snapshots every weight by name at the end of each epoch. */
function snapshots() {
  const epochs: Map<string, Float32Array>[] = [];
  const plugin = definePlugin({
    name: 'test:snapshots',
    description: 'weights after each epoch',
    apply(api) {
      const take = (ctx: TrainContext) => new Map(ctx.model.weights.map((w) => [w.name, w.read().dataSync() as Float32Array]));
      api.hooks.setup.tapPromise({ name: 'test:snapshots', stage: STAGE_REPORT }, async (ctx) => void epochs.push(take(ctx)));
      api.hooks.epoch.tapPromise({ name: 'test:snapshots' }, async (ctx) => void epochs.push(take(ctx)));
    },
  });
  return { epochs, plugin };
}
const same = (a: Float32Array, b: Float32Array) => a.every((v, i) => v === b[i]);

describe('finetune', function () {
  this.timeout(300000);
  before(() => useTestBackend());

  it("spreads group lrs as fastai's slice(lr / lrMult, lr) (even_mults) and as timm's layer decay", () => {
    // fastai even_mults(start, stop, n): start * (stop / start) ** (i / (n - 1))
    const evenMults = (start: number, stop: number, n: number) =>
      Array.from({ length: n }, (_, i) => start * (stop / start) ** (i / (n - 1)));
    const got = groupScales(3, { lrMult: 100, layerDecay: null });
    evenMults(0.01, 1, 3).forEach((v, i) => expect(got[i]).to.be.closeTo(v, 1e-12));
    expect(groupScales(4, { lrMult: 100, layerDecay: 0.5 })).to.deep.equal([0.125, 0.25, 0.5, 1]);
    expect(groupScales(1, { lrMult: 100, layerDecay: null })).to.deep.equal([1]);
  });

  it('per-variable lr factors give what PyTorch gives with one param group per factor (SGD, Nesterov momentum, weight decay)', async function () {
    const py = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        `import torch, json
torch.manual_seed(0)
a = torch.randn(3, 4); b = torch.randn(5); ga = [torch.randn(3, 4) for _ in range(3)]; gb = [torch.randn(5) for _ in range(3)]
start = {"a": a.flatten().tolist(), "b": b.tolist(), "ga": [g.flatten().tolist() for g in ga], "gb": [g.tolist() for g in gb]}
pa, pb = a.clone().requires_grad_(), b.clone().requires_grad_()
opt = torch.optim.SGD([{"params": [pa], "lr": 0.1 * 0.01}, {"params": [pb], "lr": 0.1}], lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
for i in range(3):
    pa.grad, pb.grad = ga[i].clone(), gb[i].clone()
    opt.step()
print(json.dumps({**start, "a_end": pa.detach().flatten().tolist(), "b_end": pb.detach().tolist()}))`,
      ],
      { encoding: 'utf8' },
    );
    if (py.status !== 0) {
      console.log(`    (skipped: PyTorch is not importable here: ${py.stderr.trim().split('\n').at(-1)})`);
      this.skip();
    }
    const f = JSON.parse(py.stdout) as Record<string, number[] & number[][]>;
    const a = tf.variable(tf.tensor2d(f.a, [3, 4]), true, 'ft_a');
    const b = tf.variable(tf.tensor1d(f.b), true, 'ft_b');
    const opt = new SGD({ lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
    opt.lrScale = (name) => (name === 'ft_a' ? 0.01 : 1);
    for (let i = 0; i < 3; i++) opt.applyGradients({ ft_a: tf.tensor2d(f.ga[i]!, [3, 4]), ft_b: tf.tensor1d(f.gb[i]!) });
    const close = (x: Float32Array, y: number[]) => x.forEach((v, i) => expect(v).to.be.closeTo(y[i]!, 1e-6));
    close(a.dataSync() as Float32Array, f.a_end as unknown as number[]);
    close(b.dataSync() as Float32Array, f.b_end as unknown as number[]);
    expect(opt.learningRate, 'the base lr is left as it was').to.equal(0.1);
    opt.dispose();
    tf.dispose([a, b]);
  });

  for (const bn of ['train', 'frozen'] as const) {
    it(`freezes the body for freezeEpochs (batch norm ${bn === 'train' ? 'still training' : 'in inference mode, its statistics kept'}), then trains everything`, async () => {
      const snap = snapshots();
      const run = await runSteps({
        plugins: [['finetune', { freezeEpochs: 1, bn, normalize: false }]],
        steps: 3,
        config: { epochs: 2, model: { name: 'small-cnn', options: { width: 8 } } },
        builtins: [snap.plugin],
      });
      try {
        const [start, e1, e2] = snap.epochs as [Map<string, Float32Array>, Map<string, Float32Array>, Map<string, Float32Array>];
        const groups = layerGroups(run.trainer.ctx.model, { head: 1, groups: 3 });
        const head = new Set(groups.at(-1)!.flatMap((l) => l.weights.map((w) => w.name)));
        const bnNames = new Set(
          groups
            .flat()
            .filter((l) => l.getClassName() === 'BatchNormalization')
            .flatMap((l) => l.weights.map((w) => w.name)),
        );
        expect(bnNames.size).to.be.greaterThan(0);
        for (const [name, w0] of start) {
          const isHead = head.has(name);
          const isBn = bnNames.has(name);
          const frozenInEpoch1 = !isHead && !(isBn && bn === 'train');
          expect(same(w0, e1.get(name)!), `${name} after the frozen epoch`).to.equal(frozenInEpoch1);
          // every weight moves once unfrozen (BN's running variance and all)
          expect(same(e1.get(name)!, e2.get(name)!), `${name} after the unfrozen epoch`).to.equal(false);
        }
        expect(run.logger.lines.join('\n')).to.match(/finetune: epoch 1: the backbone is frozen .*; the head \(.+\) trains/);
        expect(run.logger.lines.join('\n')).to.match(/finetune: epoch 2: everything trains; lr factors by group 0\.0050, 0\.050, 0\.50/);
        expect(
          groups.flat().every((l) => l.trainable),
          'teardown leaves every layer trainable',
        ).to.equal(true);
        // no leak: within each epoch the count is flat after its first step (which creates the newly trained variables' momentum)
        const t = run.tensorsAtStep;
        expect([t[1], t[2], t[4], t[5]]).to.deep.equal([t[1], t[1], t[4], t[4]]);
      } finally {
        cleanup(run);
      }
    });
  }

  it('normalizes with the ImageNet mean and std in training and evaluation when augment does not', async () => {
    const seen: number[] = [];
    const probe = definePlugin({
      name: 'test:probe',
      description: 'the mean of the evaluated batch after the plugins',
      apply(api) {
        api.hooks.evalBatch.tap({ name: 'test:probe', stage: STAGE_REPORT }, (b) => {
          const v = b.x.dataSync() as Float32Array;
          seen.push(v.reduce((t, x) => t + x, 0) / v.length); // summed in float64 on the host
          return b;
        });
      },
    });
    const plain = await runSteps({ steps: 1, builtins: [probe] });
    cleanup(plain);
    const raw = seen.splice(0);
    const run = await runSteps({ plugins: [['finetune', { freezeEpochs: 0 }]], steps: 1, builtins: [probe] });
    cleanup(run);
    // digits are grayscale: one channel, normalized with the mean of ImageNet's means and stds
    const m = (0.485 + 0.456 + 0.406) / 3;
    const s = (0.229 + 0.224 + 0.225) / 3;
    expect(seen[0]).to.be.closeTo((raw[0]! - m) / s, 1e-5);
  });

  it('validates its options', async () => {
    await assertOptionError('finetune', { freezeEpochs: -1 }, /plugins\.finetune\.freezeEpochs" must be >= 0/);
    await assertOptionError('finetune', { bn: 'eval' }, /plugins\.finetune\.bn/);
    await assertOptionError('finetune', { lrmult: 10 }, /did you mean "lrMult"/);
  });
});
