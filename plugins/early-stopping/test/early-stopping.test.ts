import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { definePlugin, STAGE_DATA, STAGE_REPORT, TricksError, type PluginDefinition } from '@tricks/core';
import {
  assertHookOrder,
  assertNoLeak,
  assertOptionError,
  cleanup,
  resumeParity,
  runFailing,
  runSteps,
  useTestBackend,
} from '@tricks/helper-plugin-test-runner';
import { isImprovement, resolveMode } from '../src/index.js';

/**
 * A fixture built-in: writes `key` (fake_loss) = values[epoch - 1] into each epoch's metrics before early-stopping
 * reads them, and records a copy of the model's weights at that point (the weights of that epoch).
 */
function fakeMetric(values: number[], key = 'fake_loss') {
  const weights: number[][][] = [];
  const plugin = definePlugin({
    name: 'test:fake-metric',
    description: 'writes a controlled metric (tests)',
    apply(api) {
      api.hooks.epoch.tapPromise({ name: 'test:fake-metric', stage: STAGE_DATA }, async (ctx, metrics) => {
        metrics[key] = values[metrics.epoch - 1]!;
        weights.push(ctx.model.getWeights().map((w) => Array.from(w.dataSync())));
      });
    },
  }) as PluginDefinition;
  return { plugin, weights };
}

const modelWeights = (run: { trainer: { ctx: { model: { getWeights(): tf.Tensor[] } } } }) =>
  run.trainer.ctx.model.getWeights().map((w) => Array.from(w.dataSync()));

const config = (epochs: number) => ({ epochs, limit: { train: 128, val: 64, steps: 2 }, optimizer: { lr: 0.05 } });

describe('early-stopping', function () {
  this.timeout(180000);
  before(() => useTestBackend());

  it('resolves mode auto as Keras-like: min for a loss, max otherwise', () => {
    expect(resolveMode('auto', 'val_loss')).to.equal('min');
    expect(resolveMode('auto', 'ema_val_loss')).to.equal('min');
    expect(resolveMode('auto', 'val_top1')).to.equal('max');
    expect(resolveMode('max', 'val_loss')).to.equal('max');
    expect(isImprovement(0.9, 1, 'min', 0)).to.equal(true);
    expect(isImprovement(0.95, 1, 'min', 0.05)).to.equal(false); // not by more than minDelta
    expect(isImprovement(0.94, 1, 'min', 0.05)).to.equal(true);
    expect(isImprovement(1.1, 1, 'max', 0)).to.equal(true);
    expect(isImprovement(NaN, undefined, 'min', 0)).to.equal(false);
  });

  it('validates its options', async () => {
    await assertOptionError(
      'early-stopping',
      { mode: 'down' },
      /option "plugins\.early-stopping\.mode" must be one of "auto", "min", "max"/,
    );
    await assertOptionError('early-stopping', { patience: -1 }, /option "plugins\.early-stopping\.patience" must be >= 0/);
    await assertOptionError('early-stopping', { patience: 1.5 }, /plugins\.early-stopping\.patience/);
    await assertOptionError('early-stopping', { minDelta: -0.1 }, /plugins\.early-stopping\.minDelta/);
    await assertOptionError('early-stopping', { patiense: 2 }, /did you mean "patience"/);
  });

  it('stops after `patience` epochs without improvement and restores the best epoch weights', async () => {
    // min: best at epoch 2 (0.5); 0.5 at epoch 3 is no improvement, nor 0.8 at 4 -> stops after epoch 4 of 8
    const fake = fakeMetric([1, 0.5, 0.5, 0.8, 0.1, 0.1, 0.1, 0.1]);
    const run = await runSteps({
      plugins: [['early-stopping', { monitor: 'fake_loss', patience: 2 }]],
      builtins: [fake.plugin],
      config: config(8),
    });
    try {
      expect(run.result.epochs.map((m) => m.epoch)).to.deep.equal([1, 2, 3, 4]);
      expect(run.result.stopped).to.equal(
        'early-stopping: fake_loss did not improve for 2 epochs (best 0.5000 at epoch 2); restored the weights of epoch 2',
      );
      expect(run.logger.lines.some((l) => l.includes('early-stopping: fake_loss did not improve for 2 epochs'))).to.equal(true);
      const w = modelWeights(run);
      expect(w).to.deep.equal(fake.weights[1]); // epoch 2's
      expect(w).to.not.deep.equal(fake.weights[3]); // the model trained on after it
      assertHookOrder(run, 'early-stopping', ['epoch', 'teardown']);
    } finally {
      cleanup(run);
    }
  });

  it('mode auto on a non-loss key maximizes; restoreBestWeights false keeps the last weights; minDelta counts', async () => {
    // max: 0.5 at epoch 2 is best; 0.52 and 0.55 are not more than minDelta 0.1 above it
    const fake = fakeMetric([0.3, 0.5, 0.52, 0.55, 0.9, 0.9], 'fake_top1');
    const run = await runSteps({
      plugins: [['early-stopping', { monitor: 'fake_top1', patience: 2, minDelta: 0.1, restoreBestWeights: false }]],
      builtins: [fake.plugin],
      config: config(6),
    });
    try {
      expect(run.result.epochs).to.have.length(4);
      expect(run.result.stopped).to.equal('early-stopping: fake_top1 did not improve for 2 epochs (best 0.5000 at epoch 2)');
      expect(modelWeights(run)).to.deep.equal(fake.weights[3]);
    } finally {
      cleanup(run);
    }
  });

  it('ignores the first startEpoch epochs, and runs to the end when the metric keeps improving', async () => {
    const fake = fakeMetric([0.1, 0.2, 1, 0.9, 0.8]);
    const run = await runSteps({
      plugins: [['early-stopping', { monitor: 'fake_loss', patience: 1, startEpoch: 2 }]],
      builtins: [fake.plugin],
      config: config(5),
    });
    try {
      expect(run.result.epochs).to.have.length(5);
      expect(run.result.stopped).to.equal(undefined);
    } finally {
      cleanup(run);
    }
  });

  it('fails with a TricksError naming the option and the available keys when the monitored key is missing', async () => {
    const run = await runFailing({ plugins: [['early-stopping', { monitor: 'val_acc' }]], config: config(1) });
    try {
      expect(run.error).to.be.instanceOf(TricksError);
      expect((run.error as Error).message).to.match(/plugins\.early-stopping\.monitor.*"val_acc"/);
      expect((run.error as Error).message).to.match(/available: epoch, train_loss, val_loss, val_top1, val_top5/);
    } finally {
      cleanup(run);
    }
  });

  it('leaks no tensor during the steps', async () => {
    const run = await runSteps({ plugins: ['early-stopping'], steps: 4 });
    try {
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });

  it('holds one copy of the weights (replaced, not accumulated, on improvement) and frees it in teardown', async () => {
    const counts: Record<string, number[]> = { epoch: [], teardown: [] };
    const probe = definePlugin({
      name: 'test:count',
      description: 'counts tensors after early-stopping (tests)',
      apply(api) {
        api.hooks.epoch.tapPromise(
          { name: 'test:count', stage: STAGE_REPORT + 200 },
          async () => void counts.epoch!.push(tf.memory().numTensors),
        );
        api.hooks.teardown.tapPromise({ name: 'test:count', stage: -1000 }, async () => void counts.teardown!.push(tf.memory().numTensors));
        api.hooks.teardown.tapPromise({ name: 'test:count', stage: 1000 }, async () => void counts.teardown!.push(tf.memory().numTensors));
      },
    }) as PluginDefinition;
    // improves every epoch: the copy is replaced three times
    const fake = fakeMetric([3, 2, 1]);
    const run = await runSteps({
      plugins: [['early-stopping', { monitor: 'fake_loss' }]],
      builtins: [fake.plugin, probe],
      config: config(3),
    });
    try {
      const n = run.trainer.ctx.model.weights.length;
      expect(counts.epoch[1]).to.equal(counts.epoch[0]);
      expect(counts.epoch[2]).to.equal(counts.epoch[0]);
      expect(counts.teardown[0]! - counts.teardown[1]!).to.equal(n);
    } finally {
      cleanup(run);
    }
  });
});

describe('early-stopping resumes (restart parity)', function () {
  this.timeout(240000);
  before(() => useTestBackend());

  it('a run cut after its best epoch resumes with the best, the wait and the best weights, and stops the same way', async () => {
    // best at epoch 2; cut after epoch 3 (wait 1); patience 2 -> stops after epoch 4 in both runs
    const values = [1, 0.5, 0.7, 0.8, 0.1, 0.1];
    const p = await resumeParity({
      plugins: [['early-stopping', { monitor: 'fake_loss', patience: 2 }]],
      builtins: [fakeMetric(values).plugin],
      config: config(6),
      epochs: 6,
      cut: 3,
      keys: ['fake_loss'],
    });
    expect(p.full).to.have.length(4);
    expect(p.resumed).to.deep.equal(p.full);
    const stopLine = (lines: string[]) => lines.find((l) => l.includes('early-stopping: fake_loss did not improve'));
    expect(stopLine(p.logs.resumed)).to.equal(stopLine(p.logs.full));
    expect(stopLine(p.logs.full)).to.include('best 0.5000 at epoch 2');
    const w = (t: typeof p.trainers.full) => t.ctx.model.getWeights().map((x) => Array.from(x.dataSync()));
    expect(w(p.trainers.resumed)).to.deep.equal(w(p.trainers.full));
  });
});
