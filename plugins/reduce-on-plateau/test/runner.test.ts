// The plugin in real tiny runs (digits, small-cnn) on the shared runner: it fires, resumes, validates, leaks nothing.
import { expect } from 'chai';
import { TricksError } from '@tricks/core';
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

const constant = { schedule: { name: 'constant' }, optimizer: { name: 'sgd', lr: 0.1 } };

describe('reduce-on-plateau with the shared runner', function () {
  this.timeout(180000);
  before(() => useTestBackend());

  it('taps setup and epoch, and leaks no tensor', async () => {
    const run = await runSteps({ plugins: ['reduce-on-plateau'], steps: 3 });
    try {
      assertHookOrder(run, 'reduce-on-plateau', ['setup', 'epoch']);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });

  it('validates its options', async () => {
    await assertOptionError('reduce-on-plateau', { factor: 1 }, /option "plugins\.reduce-on-plateau\.factor" must be < 1/);
    await assertOptionError('reduce-on-plateau', { factor: 0 }, /option "plugins\.reduce-on-plateau\.factor" must be > 0/);
    await assertOptionError('reduce-on-plateau', { mode: 'mean' }, /option "plugins\.reduce-on-plateau\.mode" must be one of "min", "max"/);
    await assertOptionError(
      'reduce-on-plateau',
      { thresholdMode: 'relative' },
      /option "plugins\.reduce-on-plateau\.thresholdMode" must be one of "rel", "abs"/,
    );
    await assertOptionError('reduce-on-plateau', { patience: -1 }, /patience" must be >= 0/);
    await assertOptionError('reduce-on-plateau', { patience: 1.5 }, /patience" must be integer/);
    await assertOptionError('reduce-on-plateau', { cooldown: -1 }, /cooldown" must be >= 0/);
    await assertOptionError('reduce-on-plateau', { minLr: -1e-3 }, /minLr" must be >= 0/);
    await assertOptionError('reduce-on-plateau', { monitor: '' }, /monitor" must NOT have fewer than 1 characters/);
    await assertOptionError('reduce-on-plateau', { min_lr: 0.001 }, /unknown option "plugins\.reduce-on-plateau\.min_lr"/);
  });

  it('fails with a TricksError listing the metrics when the monitored key is missing', async () => {
    const run = await runFailing({ plugins: [['reduce-on-plateau', { monitor: 'val_acc' }]], steps: 2 });
    try {
      expect(run.error).to.be.instanceOf(TricksError);
      expect((run.error as Error).message).to.match(/option plugins\.reduce-on-plateau\.monitor/);
      expect((run.error as Error).message).to.match(/available: .*val_loss.*val_top1/);
    } finally {
      cleanup(run);
    }
  });

  it('fires in a real run: the base lr drops after the plateau and every later step trains with it', async () => {
    // abs threshold 100: only the first epoch improves on +inf, so with patience 1 epoch 3 is the first that reduces
    const options = { monitor: 'val_loss', patience: 1, factor: 0.5, thresholdMode: 'abs', threshold: 100 };
    const run = await runSteps({ plugins: [['reduce-on-plateau', options]], steps: 3, config: { ...constant, epochs: 5 } });
    try {
      expect(run.result.epochs.map((m) => m.lr)).to.deep.equal([0.1, 0.1, 0.1, 0.05, 0.05]);
      expect(run.trainer.ctx.baseLr).to.equal(0.025); // reduced again after epoch 5
      expect(run.trainer.ctx.optimizer.learningRate).to.equal(0.05);
      expect(run.logger.lines.filter((l) => l.includes('reduce-on-plateau: epoch'))).to.have.length(2);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });

  it('scales the configured schedule: lr = schedule(baseLr) after a reduction', async () => {
    const options = { patience: 0, factor: 0.5, thresholdMode: 'abs', threshold: 100 };
    const config = { ...constant, schedule: { name: 'step', stepSize: 1, gamma: 0.5 }, epochs: 3 };
    const run = await runSteps({ plugins: [['reduce-on-plateau', options]], steps: 2, config });
    try {
      // step schedule halves per epoch, the plateau halves the base from epoch 3 on: 0.1, 0.05, 0.025 * 0.5
      expect(run.result.epochs.map((m) => m.lr)).to.deep.equal([0.1, 0.05, 0.0125]);
    } finally {
      cleanup(run);
    }
  });
});

describe('reduce-on-plateau resumes (restart parity)', function () {
  this.timeout(240000);
  before(() => useTestBackend());

  it('a run stopped after epoch 3 and resumed trains with the same lrs and losses and ends with the same base lr', async () => {
    // epoch 1 sets best, epochs 2-3 are bad -> reduce after 3 (cooldown 1 starts), epoch 4 is in cooldown,
    // 5-6 are bad -> reduce after 6. Without the restored state the resumed run would train epoch 4 at 0.1
    // (baseLr from the config) or reduce after epoch 5 (cooldown lost).
    const options = { patience: 1, cooldown: 1, factor: 0.5, thresholdMode: 'abs', threshold: 100 };
    const p = await resumeParity({
      plugins: [['reduce-on-plateau', options]],
      config: constant,
      epochs: 6,
      cut: 3,
      steps: 2,
      keys: ['lr'],
    });
    expect(p.full.map((m) => m.lr)).to.deep.equal([0.1, 0.1, 0.1, 0.05, 0.05, 0.05]);
    // The lrs (what the restored state decides) must be identical; the losses agree to 1e-3. One full-suite run
    // on a quiet machine gave 1.44414 for 1.44387 in epoch 4 (not reproduced in isolation): noted as a
    // nondeterminism to track down, not this plugin's.
    expect(p.resumed.map((m) => m.lr)).to.deep.equal(p.full.map((m) => m.lr));
    p.resumed.forEach((m, i) => {
      for (const k of Object.keys(m) as (keyof typeof m)[]) {
        if (k !== 'lr') expect(m[k], `epoch ${i + 1} ${String(k)}`).to.be.closeTo(p.full[i][k] as number, 1e-3);
      }
    });
    expect(p.trainers.resumed.ctx.baseLr).to.equal(p.trainers.full.ctx.baseLr).and.to.equal(0.025);
  });
});
