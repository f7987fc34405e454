/**
 * tricks' trainer and PyTorch take the same training steps (issue 18, part 2): a real `tricks train` run on digits
 * (small-cnn, SGD Nesterov with weight decay, constant lr) records its initial weights and every batch after its
 * batch taps; test/fixtures/train_steps.py replays those batches in torch (the parity twin's SmallCnn, torch.optim.SGD,
 * F.cross_entropy with label smoothing) from the same weights. The final weights and the per-epoch training losses
 * must agree to float32 precision: forward (train-mode BN), loss, every gradient, decay and the optimizer, and the
 * plugins' soft targets (mixup) and smoothing. A gap between `tricks ablate` and the twin is then not in one step.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { definePlugin, STAGE_REPORT, type PluginItem } from '@tricks/core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { createTestTrainer, testBackend, tiny } from './core/helpers.js';
import { root } from './cli-helpers.js';

const python = process.env.TORCH_PYTHON ?? '/usr/bin/python3';
const hasTorch = () => spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
type W = { shape: number[]; values: number[] };
const weightsOf = (m: LayersModel) =>
  Object.fromEntries(
    m.layers
      .filter((l) => l.getWeights().length)
      .map((l) => [l.name, l.getWeights().map((w) => ({ shape: w.shape, values: Array.from(w.dataSync()) }))]),
  ) as Record<string, W[]>;

async function compare(plugins: PluginItem[], smoothing: number) {
  let initial: Record<string, W[]> = {};
  let final: Record<string, W[]> = {};
  const batches: { x: W; y: W }[] = [];
  const capture = definePlugin({
    name: 'test:capture-steps',
    description: 'records the initial weights, every training batch after the batch taps, the final weights',
    apply(api) {
      api.hooks.model.tap({ name: 'test:capture-steps' }, (m) => ((initial = weightsOf(m)), m));
      api.hooks.batch.tap({ name: 'test:capture-steps', stage: STAGE_REPORT + 50 }, (b) => {
        batches.push({
          x: { shape: b.x.shape, values: Array.from(b.x.dataSync()) },
          y: { shape: b.y.shape, values: Array.from(b.y.dataSync()) },
        });
        return b;
      });
      api.hooks.done.tapPromise({ name: 'test:capture-steps' }, async (ctx) => {
        final = weightsOf(ctx.model);
      });
    },
  });
  const optimizer = { name: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 };
  const trainer = await createTestTrainer(
    tiny({
      model: { name: 'small-cnn', options: { width: 4 } },
      epochs: 2,
      batchSize: 16,
      limit: { train: 48, val: 16 },
      optimizer,
      schedule: { name: 'constant' },
      plugins,
    }),
    { builtins: [capture] },
  );
  const result = await trainer.run();
  expect(batches).to.have.length(6);
  const torch = (float64: boolean) => {
    const r = spawnSync(python, [join(root, 'test', 'fixtures', 'train_steps.py')], {
      input: JSON.stringify({ width: 4, weights: initial, batches, optimizer, smoothing, float64 }),
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    });
    expect(r.status, r.stderr).to.equal(0);
    return JSON.parse(r.stdout) as { losses: number[]; weights: Record<string, number[][]> };
  };
  const [t32, t64] = [torch(false), torch(true)];
  // the epoch's training loss is the mean of its 3 steps' losses
  const epochLoss = [0, 1].map((e) => t64.losses.slice(3 * e, 3 * e + 3).reduce((a, v) => a + v, 0) / 3);
  result.epochs.forEach((m, e) => expect(m.train_loss, `epoch ${e + 1} training loss`).to.be.closeTo(epochLoss[e], 1e-5 * epochLoss[e]));
  // each weight against float64 torch, with float32 torch's own distance from float64 as the yardstick of rounding
  let moved = 0;
  const rows: string[] = [];
  for (const [layer, ws] of Object.entries(final)) {
    ws.forEach((w, k) => {
      const want = t64.weights[layer][k];
      let ours = 0;
      let theirs = 0;
      let scale = 0;
      for (let i = 0; i < want.length; i++) {
        ours = Math.max(ours, Math.abs(w.values[i] - want[i]));
        theirs = Math.max(theirs, Math.abs(t32.weights[layer][k][i] - want[i]));
        scale = Math.max(scale, Math.abs(want[i]));
        moved = Math.max(moved, Math.abs(w.values[i] - initial[layer][k].values[i]));
      }
      rows.push(`${layer}[${k}]: tricks ${ours.toExponential(1)}, torch f32 ${theirs.toExponential(1)} (max |w| ${scale.toFixed(3)})`);
      // BN's moving variance: tfjs-layers averages the biased batch variance, torch the unbiased one (N/(N-1),
      // N = 16 x 28 x 28 for bn1): 1e-4 relative
      const bias = k === 3 && layer.startsWith('bn') ? 2e-4 * scale : 0;
      expect(ours, `${layer} weight ${k}: max |tricks - torch f64|\n${rows.join('\n')}`).to.be.below(
        4 * theirs + 2e-6 * Math.max(scale, 1) + bias,
      );
    });
  }
  if (process.env.TRICKS_VERBOSE) console.log(rows.join('\n'));
  expect(moved, 'the weights moved (the steps were taken)').to.be.above(1e-3);
}

describe('training steps: tricks trainer = PyTorch on the same batches (weights after 6 steps)', function () {
  this.timeout(120000);
  before(async function () {
    if (!hasTorch()) {
      console.log('    (skipped: PyTorch is not importable with /usr/bin/python3; apt-get install python3-torch)');
      this.skip();
    }
    await testBackend();
  });

  it('baseline: train-mode BatchNorm, cross-entropy, gradients, coupled weight decay and Nesterov momentum', async () => {
    await compare([], 0);
  });

  it('with augment (pad-crop, flip), mixup and label smoothing: the soft, smoothed targets', async () => {
    await compare(
      [
        ['augment', { preset: 'none', padCrop: 2, flip: 0.5, normalize: false }],
        ['mixup', { alpha: 0.2 }],
        ['label-smoothing', { epsilon: 0.1 }],
      ],
      0.1,
    );
  });
});
