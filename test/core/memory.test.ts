// Micro-batches (gradAccum, and the automatic split when a step would not fit the backend's memory) and
// the out-of-memory error.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  definePlugin,
  isOutOfMemory,
  MemoryLogger,
  microBatchRanges,
  sliceBatch,
  type Batch,
  type ModelSpec,
  type TrainContext,
} from '@tricks/core';
import { planMicroBatches, WASM_HEAP_MAX, wasmMemory } from '@tricks/backend-wasm';
import { testBackend, tiny, tmp, createTestTrainer } from './helpers.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const tricks = join(root, 'core', 'cli', 'bin', 'tricks.js');

/** A CNN without batch norm, so micro-batches must give the whole batch's update. */
function noBnCnn(spec: ModelSpec): tfl.LayersModel {
  const input = tfl.input({ shape: spec.inputShape });
  let x = tfl.layers.conv2d({ filters: 6, kernelSize: 3, activation: 'relu', padding: 'same' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.maxPooling2d({ poolSize: 2 }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, activation: 'relu' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.flatten().apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: spec.numClasses }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

/** Registers the model and records what the loss hook saw of each (micro-)batch. */
const initial: Float32Array[][] = [];
function recorder(seen: { rows: number; indices: number[]; labels: number[]; sw: number[]; micro: number }[]) {
  return definePlugin({
    name: 'record-micro',
    description: 'records the micro-batches the loss hook sees',
    apply(api) {
      api.models!.register('no-bn-cnn', 'test model', noBnCnn);
      api.hooks.setup.tapPromise('record-micro', async (ctx) => {
        initial.push(ctx.model.getWeights().map((w) => Float32Array.from(w.dataSync())));
      });
      api.hooks.batch.tap('record-micro', (b: Batch) => ({
        ...b,
        meta: { ...b.meta, sampleWeights: tf.range(0, b.x.shape[0]) as tf.Tensor1D },
      }));
      api.hooks.loss.tap('record-micro', (state, ctx: TrainContext) => {
        seen.push({
          rows: state.batch.x.shape[0],
          indices: Array.from(state.batch.meta.indices),
          labels: Array.from(state.batch.meta.labels),
          sw: Array.from(state.batch.meta.sampleWeights!.dataSync()),
          micro: ctx.microBatches,
        });
        // uniform weights for the loss itself, so the split is exact
        return { ...state, sampleWeights: undefined };
      });
    },
  });
}

describe('micro-batches and memory', function () {
  this.timeout(180000);
  before(testBackend);

  it('splits rows evenly and slices per-sample meta (typed arrays and tensors) with them', () => {
    expect(microBatchRanges(10, 3)).to.deep.equal([
      [0, 4],
      [4, 7],
      [7, 10],
    ]);
    expect(microBatchRanges(4, 8)).to.have.length(4);
    expect(microBatchRanges(5, 1)).to.deep.equal([[0, 5]]);
    const b: Batch = {
      x: tf.zeros([4, 2, 2, 1]) as tf.Tensor4D,
      y: tf.eye(4) as tf.Tensor2D,
      meta: { indices: Int32Array.of(9, 8, 7, 6), labels: Int32Array.of(0, 1, 2, 3), epoch: 0, step: 0, extra: 'kept', t: tf.range(0, 4) },
    };
    const s = sliceBatch(b, 1, 3);
    expect(s.x.shape).to.deep.equal([2, 2, 2, 1]);
    expect(Array.from(tf.argMax(s.y, 1).dataSync())).to.deep.equal([1, 2]);
    expect(Array.from(s.meta.indices)).to.deep.equal([8, 7]);
    expect(s.meta.extra).to.equal('kept');
    expect(Array.from((s.meta.t as tf.Tensor).dataSync())).to.deep.equal([1, 2]);
    tf.dispose([b.x, b.y, b.meta.t as tf.Tensor, s.x, s.y, s.meta.t as tf.Tensor]);
  });

  it('--grad-accum gives the whole batch update (no batch norm): weights within float tolerance, loss hook once per micro-batch', async () => {
    const weights: Float32Array[][] = [];
    const losses: number[] = [];
    const seen: Parameters<typeof recorder>[0][] = [];
    for (const gradAccum of [1, 3]) {
      const rec: Parameters<typeof recorder>[0] = [];
      const cfg = tiny({ model: 'no-bn-cnn', gradAccum, limit: { train: 256, val: 64, steps: 3 }, optimizer: { lr: 0.05, momentum: 0.9 } });
      const trainer = await createTestTrainer(cfg, { logger: new MemoryLogger(), builtins: [recorder(rec)] });
      const r = await trainer.run();
      weights.push(trainer.ctx.model.getWeights().map((w) => Float32Array.from(w.dataSync())));
      losses.push(r.epochs[0]!.train_loss);
      seen.push(rec);
      trainer.dispose();
    }
    const [whole, micro] = seen as [Parameters<typeof recorder>[0], Parameters<typeof recorder>[0]];
    expect(whole.map((s) => s.rows)).to.deep.equal([32, 32, 32]);
    expect(micro.map((s) => s.rows)).to.deep.equal([11, 11, 10, 11, 11, 10, 11, 11, 10]);
    expect(micro.every((s) => s.micro === 3)).to.equal(true);
    // the micro-batches are the whole batch's rows, with their per-sample meta
    for (let step = 0; step < 3; step++) {
      const parts = micro.slice(3 * step, 3 * step + 3);
      expect(parts.flatMap((p) => p.indices)).to.deep.equal(whole[step]!.indices);
      expect(parts.flatMap((p) => p.labels)).to.deep.equal(whole[step]!.labels);
      expect(parts.flatMap((p) => p.sw)).to.deep.equal([...Array(32).keys()]);
    }
    expect(losses[1]).to.be.closeTo(losses[0]!, 1e-5);
    let maxErr = 0,
      maxRef = 0;
    weights[0]!.forEach((w, i) =>
      w.forEach((v, j) => {
        maxErr = Math.max(maxErr, Math.abs(v - weights[1]![i]![j]!));
        maxRef = Math.max(maxRef, Math.abs(v));
      }),
    );
    expect(maxErr / maxRef).to.be.below(1e-5);
    // both started from the same seeded weights, and the steps moved them
    expect(initial.at(-1)!.map((w) => Array.from(w))).to.deep.equal(initial.at(-2)!.map((w) => Array.from(w)));
    const moved = Math.max(...weights[1]!.map((w, i) => Math.max(...w.map((v, j) => Math.abs(v - initial.at(-1)![i]![j]!)))));
    expect(moved).to.be.above(100 * maxErr);
  });

  it('splits automatically when a step of the batch does not fit the memory budget, and says so once', async function () {
    if (tf.getBackend() !== 'wasm') this.skip();
    // a budget that holds a step of a few images but not of 64
    const probe = planMicroBatches({
      model: noBnCnn({ inputShape: [28, 28, 1], numClasses: 10 }),
      modelName: 'no-bn-cnn',
      inputShape: [28, 28, 1],
      numClasses: 10,
      batchSize: 64,
      evalBatchSize: 64,
      memory: { available: () => 4 * 2 ** 20, peakDuring: (f) => wasmMemory.peakDuring(f) },
      logger: new MemoryLogger(),
    });
    expect(probe.microBatches).to.be.greaterThan(1);
    expect(probe.stepBytes!).to.be.at.most(4 * 2 ** 20);
    // through the trainer, with TRICKS_WASM_HEAP_MB lowering the wasm budget
    const logger = new MemoryLogger();
    const old = process.env.TRICKS_WASM_HEAP_MB;
    const live = 0.85 * WASM_HEAP_MAX - wasmMemory.available();
    process.env.TRICKS_WASM_HEAP_MB = String(Math.ceil((live + 8 * 2 ** 20) / 0.85 / 2 ** 20));
    try {
      const cfg = tiny({ batchSize: 64, limit: { train: 256, val: 64, steps: 2 } });
      const trainer = await createTestTrainer(cfg, { logger });
      await trainer.run();
      expect(trainer.ctx.microBatches, logger.lines.join('\n')).to.be.greaterThan(1);
      trainer.dispose();
    } finally {
      if (old === undefined) delete process.env.TRICKS_WASM_HEAP_MB;
      else process.env.TRICKS_WASM_HEAP_MB = old;
    }
    const notes = logger.lines.filter((l) => /micro-batches/.test(l));
    expect(notes, logger.lines.join('\n')).to.have.length(1);
    expect(notes[0]).to.match(
      /memory: a step of small-cnn at 28x28 px, batch 64, needs about .* MB .* micro-batches of \d+ or less .*--grad-accum \d+ sets it; batch norm normalizes each micro-batch/,
    );
  });

  it('recognizes out-of-memory failures of wasm and of typed-array allocation, not other errors', () => {
    const abort = new Error('Aborted(). Build with -sASSERTIONS for more info.');
    abort.name = 'RuntimeError';
    const oob = new Error('memory access out of bounds');
    oob.name = 'RuntimeError';
    expect(isOutOfMemory(abort)).to.equal(true);
    expect(isOutOfMemory(oob)).to.equal(true);
    expect(isOutOfMemory(new RangeError('Array buffer allocation failed'))).to.equal(true);
    expect(isOutOfMemory(new TypeError('x is undefined'))).to.equal(false);
    // kernel threads never allocate: their faults are kernel errors, reported as they are
    const kernel = new Error('wasm kernel bn_apply failed on a kernel thread: RuntimeError: memory access out of bounds');
    kernel.name = 'RuntimeError';
    expect(isOutOfMemory(kernel)).to.equal(false);
  });

  it('out of memory on a forced tiny budget: one message naming model, input and batch, non-zero exit, the checkpoint intact', () => {
    const out = join(tmp(), 'run');
    const cli = (args: string[], env: Record<string, string> = {}) =>
      spawnSync(
        process.execPath,
        [tricks, 'train', '--preset', 'quickstart', '--limit-train', '256', '--limit-val', '64', '--steps', '2', '--out', out, ...args],
        {
          encoding: 'utf8',
          env: { ...process.env, ...env },
          timeout: 120000,
        },
      );
    const first = cli(['--epochs', '1']);
    expect(first.status, first.stderr).to.equal(0);
    const ckpt = join(out, 'checkpoint');
    const snapshot = () =>
      Object.fromEntries(
        readdirSync(ckpt)
          .filter((f) => statSync(join(ckpt, f)).isFile())
          .map((f) => [f, readFileSync(join(ckpt, f)).toString('base64')]),
      );
    const before = snapshot();
    const r = spawnSync(process.execPath, [tricks, 'train', '--resume', out, '--epochs', '2'], {
      encoding: 'utf8',
      env: { ...process.env, TRICKS_WASM_HEAP_MB: '1' },
      timeout: 120000,
    });
    expect(r.status).to.not.equal(0);
    expect(r.stderr).to.match(/out of memory: a training step of small-cnn at 28x28 px with batch \d+ does not fit/);
    expect(r.stderr).to.match(/--grad-accum/);
    expect(r.stderr).to.not.match(/^\s+at .+:\d+:\d+/m);
    expect(snapshot()).to.deep.equal(before);
  });
});
