import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import type { PluginItem } from '@tricks/core';
import * as tf from '@tensorflow/tfjs-core';
import {
  assertHookOrder,
  assertNoLeak,
  assertOptionError,
  assertParity,
  assertTapOrder,
  cleanup,
  hooksOf,
  interruptParity,
  resumeParity,
  runSteps,
  tapsOf,
  tinyBatch,
  tinyConfig,
  useTestBackend,
} from '../src/index.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../test/fixtures/${name}.mjs`, import.meta.url));

describe('@tricks/helper-plugin-test-runner', function () {
  this.timeout(120000);
  before(() => useTestBackend());

  it('runs N steps of the tiny model with a plugin and records every tap call in order', async () => {
    const run = await runSteps({ plugins: [[fixture('tidy'), { weight: 0.5 }]], steps: 3 });
    try {
      expect(run.tensorsAtStep).to.have.length(3);
      expect(tapsOf(run.calls, 'loss').filter((t) => t === 'tidy')).to.have.length(3);
      expect(hooksOf(run.calls, 'tidy')).to.deep.equal(['batch', 'loss', 'epoch']);
      assertHookOrder(run, 'tidy', ['batch', 'loss', 'epoch']);
      expect(() => assertHookOrder(run, 'tidy', ['loss', 'batch', 'epoch'])).to.throw(
        /hook order of tidy: expected loss -> batch -> epoch, got batch -> loss -> epoch/,
      );
      expect(run.result.epochs[0].tidy).to.equal(run.trainer.ctx.lastTerms.tidy);
      expect(run.trainer.config.model).to.deep.equal(tinyConfig().model);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });

  it('assertNoLeak catches a plugin that keeps a tensor every step', async () => {
    const run = await runSteps({ plugins: [fixture('leaky')], steps: 4 });
    try {
      expect(() => assertNoLeak(run)).to.throw(/tensor leak: tensors at the start of each step (\d+), (\d+), (\d+), (\d+)/);
      const [, b, c, d] = run.tensorsAtStep;
      expect([c - b, d - c]).to.deep.equal([1, 1]);
    } finally {
      cleanup(run);
    }
  });

  it('assertTapOrder checks the order of named taps on every call of a hook', () => {
    const calls = ['batch:augment', 'batch:mixup', 'loss:ls', 'batch:augment', 'batch:mixup', 'loss:ls'];
    assertTapOrder({ calls }, 'batch', ['augment', 'mixup']);
    expect(() => assertTapOrder({ calls }, 'batch', ['mixup', 'augment'])).to.throw(/taps of batch: expected mixup -> augment/);
    expect(() => assertTapOrder({ calls: ['batch:augment', 'batch:augment'] }, 'batch', ['augment', 'mixup'])).to.throw(/taps of batch/);
    expect(() => assertTapOrder({ calls }, 'step', ['ema'])).to.throw(/\(no call\)/);
  });

  it('assertOptionError passes on a rejected option and fails on an accepted one', async () => {
    const msg = await assertOptionError(fixture('tidy'), { wieght: 1 }, /did you mean "weight"/);
    expect(msg).to.match(/plugins\.tidy\.wieght/);
    await assertOptionError(fixture('tidy'), { weight: -1 }, /weight/);
    let err: Error | undefined;
    await assertOptionError(fixture('tidy'), { weight: 2 }, /weight/).catch((e) => (err = e));
    expect(err?.message).to.match(/options \{"weight":2\} for .*tidy\.mjs were accepted/);
  });

  it('tinyBatch is seeded, one-hot and the right shape', () => {
    const before = tf.memory().numTensors;
    const a = tinyBatch({ size: 4, seed: 3 });
    const b = tinyBatch({ size: 4, seed: 3 });
    expect(a.x.shape).to.deep.equal([4, 28, 28, 1]);
    expect(a.y.shape).to.deep.equal([4, 10]);
    expect(Array.from(a.x.dataSync())).to.deep.equal(Array.from(b.x.dataSync()));
    const sums = tf.sum(a.y, 1);
    const argmax = tf.argMax(a.y, 1);
    expect(Array.from(sums.dataSync())).to.deep.equal([1, 1, 1, 1]);
    expect(Array.from(argmax.dataSync())).to.deep.equal(Array.from(a.meta.labels));
    tf.dispose([a.x, a.y, b.x, b.y, sums, argmax]);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it("interruptParity: an abort mid-epoch and a resume give the uninterrupted figures, with the interrupted epoch's sums", async () => {
    const p = await interruptParity({ epochs: 2, at: 6 });
    const twice = await interruptParity({ epochs: 3, at: [6, 7, 11] });
    expect(twice.logs.cut.join('\n')).to.match(/resumed from .*: epoch 2, step 2 of it[\s\S]*resumed from .*: epoch 2, step 3 of it/);
    assertParity(twice);
    expect(p.full).to.have.length(2);
    expect(p.logs.cut.join('\n')).to.not.match(/epoch 2\/2/); // stopped inside epoch 2
    expect(p.logs.resumed.join('\n')).to.match(/resumed from .*: epoch 2, step 2 of it/);
    assertParity(p);
    expect(p.resumed).to.deep.equal(p.full);
  });

  it('the parity checks catch a plugin that keeps state without saving it, and pass once it saves it', async () => {
    const forgetful = [[fixture('counter'), { save: false }]] as PluginItem[];
    for (const p of [
      await interruptParity({ plugins: forgetful, epochs: 2, at: 6 }),
      await resumeParity({ plugins: forgetful, epochs: 2 }),
    ])
      expect(() => assertParity(p)).to.throw(/epoch 2 train_loss: .* straight, .* resumed/);
    const saving = [[fixture('counter'), { save: true }]] as PluginItem[];
    assertParity(await interruptParity({ plugins: saving, epochs: 2, at: 6 }));
  });

  it('assertParity allows a stated tolerance and names every figure that differs', () => {
    const full = [{ train_loss: 1, val_top1: 0.5 }];
    expect(() => assertParity({ full, resumed: [{ train_loss: 1 + 1e-9, val_top1: 0.5 }] })).to.throw(/epoch 1 train_loss: 1 straight/);
    assertParity({ full, resumed: [{ train_loss: 1 + 1e-9, val_top1: 0.5 }] }, 1e-6);
    expect(() => assertParity({ full, resumed: [] })).to.throw(/1 epochs straight, 0 resumed/);
  });
});
