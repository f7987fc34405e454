import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadOrt, modelQuantization, quantizeModel, toOnnx, writeFormat } from '@tricks/export';
import { loadModel } from '@tricks/core';
import { type ModelQuantization } from '@tricks/helper-quant';
import {
  assertNoLeak,
  assertOptionError,
  cleanup,
  assertInt8Artifact,
  runSteps,
  tapsOf,
  useTestBackend,
} from '@tricks/helper-plugin-test-runner';
import { QatSimulation, type QatOptions } from '../src/index.js';

const OPTS: QatOptions = {
  startEpoch: 0,
  freezeObserversEpoch: null,
  freezeBnEpoch: null,
  bits: 8,
  perChannel: true,
  foldBn: true,
  averagingConstant: 0.01,
};

function tinyNet(): tfl.LayersModel {
  const inp = tfl.input({ shape: [8, 8, 2] });
  let x = tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', useBias: false, name: 'c1' }).apply(inp) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: 'bn1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ name: 'r1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same', useBias: false, name: 'dw' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: 'bn2' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 3, name: 'fc' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: inp, outputs: out });
}

describe('qat', function () {
  this.timeout(120000);
  before(() => useTestBackend());

  it('rejects bad options with the option path and a hint', async () => {
    await assertOptionError('qat', { bits: 1 }, /bits/);
    await assertOptionError('qat', { startEpoh: 1 }, /startEpoch/);
  });

  it('the simulation in inference equals the exported int8 ONNX (QDQ on the same grid), BN folding included', async () => {
    const m = tinyNet();
    tf.tidy(() =>
      m
        .getLayer('bn1')
        .weights.forEach((w) => (w.read() as tf.Variable).assign(tf.add(w.read(), tf.randomUniform(w.shape as number[], 0.1, 0.5)))),
    );
    const sim = new QatSimulation(m, OPTS, () => 0);
    expect(sim.pairs).to.deep.equal([
      { conv: 'c1', bn: 'bn1' },
      { conv: 'dw', bn: 'bn2' },
    ]);
    const x = tf.randomNormal([16, 8, 8, 2]) as tf.Tensor4D;
    // training-mode passes feed the observers (and move BN statistics)
    // (leaks are checked in the run below: a bare apply(training) outside a gradient tape leaks one tensor per
    // call inside tfjs-layers' BatchNormalization, with or without qat)
    for (let i = 0; i < 3; i++) tf.tidy(() => m.apply(x, { training: true }) as tf.Tensor);
    expect(sim.observers.get('c1')!.count).to.equal(3);
    const simOut = (m.predict(x) as tf.Tensor).dataSync();
    const { model: q, quantization } = await quantizeModel(m, {
      bits: 8,
      perChannel: true,
      inputRanges: sim.inputRanges(),
      pairs: sim.pairs,
    });
    expect(q.layers.map((l) => l.name)).to.not.include('bn1');
    const ort = await loadOrt();
    const s = await ort.InferenceSession.create(toOnnx(q, { quantization }), { graphOptimizationLevel: 'disabled' });
    const r = await s.run({ input: new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape) });
    const onnxOut = r.logits.data as Float32Array;
    let d = 0;
    for (let i = 0; i < simOut.length; i++) d = Math.max(d, Math.abs(simOut[i] - onnxOut[i]));
    expect(d).to.be.below(2e-4);
    // and quantization is really on: the float model differs
    sim.dispose();
    const floatOut = (m.predict(x) as tf.Tensor).dataSync();
    let f = 0;
    for (let i = 0; i < simOut.length; i++) f = Math.max(f, Math.abs(simOut[i] - floatOut[i]));
    expect(f).to.be.above(1e-4);
  });

  it('gradients reach every kernel through the STE; frozen BN uses its moving statistics', () => {
    const m = tinyNet();
    const sim = new QatSimulation(m, { ...OPTS, freezeBnEpoch: 0 }, () => 0);
    const x = tf.randomNormal([4, 8, 8, 2]);
    const mean0 = m.getLayer('bn1').getWeights()[2].dataSync().slice();
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.square(m.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar,
      m.trainableWeights.map((w) => w.read() as tf.Variable),
    );
    for (const name of ['c1/kernel', 'dw/depthwise_kernel', 'fc/kernel']) {
      const g = Object.entries(grads).find(([k]) => k.includes(name))![1];
      expect(tf.sum(tf.abs(g)).dataSync()[0], name).to.be.greaterThan(0);
    }
    expect(Array.from(m.getLayer('bn1').getWeights()[2].dataSync())).to.deep.equal(Array.from(mean0));
    sim.dispose();
  });

  it('in a run: no tensor leak, export tap after prune stage and before the formats; int8 ONNX within 0.2 points of the simulation', async () => {
    const run = await runSteps({ plugins: [['qat', {}]], steps: 5, config: { epochs: 2, export: { formats: ['tfjs', 'onnx'] } } });
    try {
      assertNoLeak(run);
      expect(tapsOf(run.calls, 'export')).to.deep.equal(['qat', 'tricks:export']);
      const report = JSON.parse(readFileSync(join(run.out, 'export-report.json'), 'utf8'));
      const [tfjs, onnx] = report.artifacts;
      // the deployable export of model-qat, the final artifact
      expect(tfjs.dir).to.equal(join(run.out, 'export', 'tfjs'));
      expect(tfjs.quantization).to.equal('qat');
      expect(onnx.quantization).to.equal('qat');
      assertInt8Artifact(onnx, 0.002);
      expect(report.reference.top1).to.equal(run.result.epochs.at(-1)!.val_top1);
      const meta = JSON.parse(readFileSync(join(run.out, 'model-qat', 'model.json'), 'utf8')).userDefinedMetadata.tricks_quantization;
      expect(meta.layers.conv1.weight.scale).to.have.length(8);
      expect((meta.layers as ModelQuantization).conv2.input!.zeroPoint).to.equal(0); // after ReLU + pooling: min 0
      // a later export from the saved qat model (what `tricks export --format onnx` runs) writes the same QDQ grid
      const saved = await loadModel(join(run.out, 'model-qat'));
      const again = await writeFormat(saved, 'onnx', join(run.out, 'cli-onnx'), {
        quantization: modelQuantization(saved),
        bits: 8,
        perChannel: true,
      });
      saved.dispose();
      expect(again.quantization).to.equal('qat');
      expect(again.bytes).to.equal(onnx.bytes);
    } finally {
      cleanup(run);
    }
  });
});
