import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { channelGraph } from '../src/channels.js';
import { countParams } from '@tricks/models';
import { loadModel } from '@tricks/core';
import {
  assertNoLeak,
  assertOptionError,
  cleanup,
  assertInt8Artifact,
  runSteps,
  tapsOf,
  useTestBackend,
} from '@tricks/helper-plugin-test-runner';
import { agpRatio, keepCount, planPruning } from '../src/index.js';

describe('prune', function () {
  this.timeout(180000);
  before(() => useTestBackend());

  it('AGP ramp and kept counts with roundTo', () => {
    expect(agpRatio(0.5, 0, 0, 100)).to.equal(0);
    expect(agpRatio(0.5, 50, 0, 100)).to.be.closeTo(0.5 * (1 - 0.125), 1e-12);
    expect(agpRatio(0.5, 100, 0, 100)).to.equal(0.5);
    expect(agpRatio(0.5, 150, 0, 100)).to.equal(0.5);
    expect(keepCount(64, 0.3, 1)).to.equal(45);
    expect(keepCount(64, 0.3, 8)).to.equal(48);
    expect(keepCount(16, 0.9, 8)).to.equal(8);
    expect(keepCount(10, 0, 4)).to.equal(10);
  });

  it('ranks filters by L1, L2 or BN gamma, and keeps the most important', () => {
    const inp = tfl.input({ shape: [4, 4, 1] });
    const c = tfl.layers.conv2d({ filters: 4, kernelSize: 1, useBias: false, name: 'c' }).apply(inp) as tfl.SymbolicTensor;
    const bn = tfl.layers.batchNormalization({ name: 'bn' }).apply(c) as tfl.SymbolicTensor;
    const gap = tfl.layers.globalAveragePooling2d({}).apply(bn) as tfl.SymbolicTensor;
    const m = tfl.model({ inputs: inp, outputs: tfl.layers.dense({ units: 2, name: 'out' }).apply(gap) as tfl.SymbolicTensor });
    m.getLayer('c').setWeights([tf.tensor4d([0.1, -3, 2, 0.5], [1, 1, 1, 4])]);
    m.getLayer('bn').setWeights([tf.tensor1d([5, 0.1, 0.2, 4]), tf.zeros([4]), tf.zeros([4]), tf.ones([4])]);
    const g = channelGraph(m);
    const id = g.groups.find((x) => x.producers.includes('c'))!.id;
    expect(planPruning(m, g, 0.5, { criterion: 'l1', roundTo: 1 }).get(id)).to.deep.equal([1, 2]);
    expect(planPruning(m, g, 0.5, { criterion: 'bn', roundTo: 1 }).get(id)).to.deep.equal([0, 3]);
    expect(planPruning(m, g, 0.25, { criterion: 'l2', roundTo: 1 }).get(id)).to.deep.equal([1, 2, 3]);
  });

  it('rejects bad options', async () => {
    await assertOptionError('prune', { ratio: 1.5 }, /ratio/);
    await assertOptionError('prune', { criterion: 'l3' }, /criterion/);
    await assertOptionError('prune', { rato: 0.3 }, /ratio/);
  });

  it('one-shot: prunes after epoch 1, masks during fine-tuning, exports a smaller model with a report; no leak', async () => {
    const run = await runSteps({ plugins: [['prune', { ratio: 0.5, epoch: 1 }]], steps: 4, config: { epochs: 2 } });
    try {
      assertNoLeak(run);
      expect(run.result.epochs[0].prune_top1_before_finetune).to.be.a('number');
      expect(run.trainer.ctx.lastTerms).to.not.have.property('sparsity'); // off once pruned
      const r = JSON.parse(readFileSync(join(run.out, 'prune-report.json'), 'utf8'));
      expect(r.after.params).to.be.below(0.6 * r.before.params);
      expect(r.macs_ratio).to.be.below(0.6);
      expect(r.before.top1).to.equal(run.result.epochs[0].val_top1);
      const small = await loadModel(join(run.out, 'model-pruned'));
      expect(countParams(small)).to.equal(r.after.params);
      expect((small.getLayer('conv1').getConfig() as { filters: number }).filters).to.equal(4);
      // masked channels of the training model are zero
      const k = run.trainer.ctx.model.getLayer('conv1').getWeights()[0];
      const norms = tf.sum(tf.abs(k), [0, 1, 2]).dataSync();
      expect(Array.from(norms).filter((v) => v === 0)).to.have.length(4);
      const exp = JSON.parse(readFileSync(join(run.out, 'export-report.json'), 'utf8')).artifacts[0];
      // written from model-pruned, the final artifact; the deployable copy takes pixels
      expect(exp.dir).to.equal(join(run.out, 'export', 'tfjs'));
      expect(exp.agreement).to.equal(1); // the smaller model computes what the masked one does
      expect(exp.top1).to.equal(r.after.top1);
    } finally {
      cleanup(run);
    }
  });

  it('gradual (AGP) with roundTo and a sparsity term: the final ratio is reached and exported', async () => {
    const run = await runSteps({
      plugins: [['prune', { ratio: 0.5, schedule: 'gradual', startEpoch: 0, endEpoch: 1, frequency: 2, roundTo: 2, sparsity: 1e-4 }]],
      steps: 4,
      config: { epochs: 2 },
    });
    try {
      expect(run.result.epochs[0]).to.not.have.property('prune_top1_before_finetune');
      const r = JSON.parse(readFileSync(join(run.out, 'prune-report.json'), 'utf8'));
      expect(r.after.params).to.be.below(0.6 * r.before.params);
      expect(existsSync(join(run.out, 'model-pruned', 'model.json'))).to.equal(true);
    } finally {
      cleanup(run);
    }
  });

  it('prune -> fine-tune -> quantize in one run: the int8 ONNX is the pruned model on the QAT grid, within one validation image', async () => {
    const run = await runSteps({
      plugins: [
        ['prune', { ratio: 0.5, epoch: 1 }],
        ['qat', { startEpoch: 2 }],
      ],
      steps: 4,
      config: { epochs: 3, export: { formats: ['tfjs', 'onnx'] } },
    });
    try {
      assertNoLeak(run);
      expect(tapsOf(run.calls, 'export')).to.deep.equal(['prune', 'qat', 'tricks:export']);
      const report = JSON.parse(readFileSync(join(run.out, 'export-report.json'), 'utf8'));
      const [tfjs, onnx] = report.artifacts;
      // the export of model-qat (the final artifact), with its grid's metadata
      expect(tfjs.dir).to.equal(join(run.out, 'export', 'tfjs'));
      const qat = await loadModel(tfjs.dir);
      expect((qat.getLayer('conv1').getConfig() as { filters: number }).filters).to.equal(4); // pruned
      expect(qat.layers.map((l) => l.name)).to.not.include('bn1'); // folded
      const meta = qat.getUserDefinedMetadata() as { tricks_quantization: { layers: Record<string, { weight: { scale: number[] } }> } };
      expect(meta.tricks_quantization.layers.conv1.weight.scale).to.have.length(4);
      expect(onnx.quantization).to.equal('qat');
      // tinyConfig validates on 128 images: int8 rounding may flip one borderline prediction (it did when the
      // float conv kernels changed their summation order), not more; agreement bounds the rest.
      assertInt8Artifact(onnx, 1 / 128 + 1e-9);
      expect(run.result.epochs.map((e) => e.qat ?? 0)).to.deep.equal([0, 0, 1]);
    } finally {
      cleanup(run);
    }
  });
});
