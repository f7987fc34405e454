import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import {
  createHooks,
  loadModel,
  tapOnly,
  validate,
  type Artifact,
  type EpochMetrics,
  type PluginApi,
  type PluginInstance,
  type PluginState,
  type TrainContext,
} from '@tricks/core';
import plugin, { emaDecay, WeightEma, type EmaOptions } from '../src/index.js';

const quiet = { info() {}, warn() {}, error() {}, debug() {} } as unknown as TrainContext['logger'];
const model = () => tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [3], units: 2 }), tfl.layers.batchNormalization()] });
const values = (m: tfl.LayersModel) => m.weights.map((w) => Array.from(w.read().dataSync()));
/** Moves every weight: w <- w + delta (as an optimizer and BN's moving statistics would). */
const move = (m: tfl.LayersModel, delta: number) =>
  tf.tidy(() => m.weights.forEach((w) => (w.read() as tf.Variable).assign(tf.add(w.read(), delta))));

describe('ema', () => {
  let dir: string;
  before(async () => {
    await tf.setBackend('wasm');
    dir = mkdtempSync(join(tmpdir(), 'ema-test-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('decay with TF-style warm-up: min(decay, (1+n)/(10+n))', () => {
    expect(emaDecay(0.9998, 0, true)).to.be.closeTo(0.1, 1e-15);
    expect(emaDecay(0.9998, 90, true)).to.be.closeTo(91 / 100, 1e-15);
    expect(emaDecay(0.9998, 1e6, true)).to.equal(0.9998);
    expect(emaDecay(0.9, 0, false)).to.equal(0.9);
  });

  it('shadow = d*shadow + (1-d)*w for every weight, BN statistics included, against a float64 reference', () => {
    const m = model();
    const ema = new WeightEma(m, 0.99, true);
    let ref = values(m);
    for (let n = 0; n < 6; n++) {
      move(m, 0.1 * (n + 1));
      const d = ema.update();
      expect(d).to.equal(Math.min(0.99, (1 + n) / (10 + n)));
      const w = values(m);
      ref = ref.map((r, i) => r.map((v, j) => d * v + (1 - d) * w[i]![j]!));
    }
    expect(ema.shadow).to.have.length(m.weights.length); // kernel, bias, gamma, beta, moving mean, moving variance
    ema.shadow.forEach((s, i) =>
      Array.from(s.dataSync()).forEach((v, j) => expect(v).to.be.closeTo(ref[i]![j]!, 1e-5 * Math.abs(ref[i]![j]!) + 1e-6)),
    );
    const n = tf.memory().numTensors;
    ema.update();
    expect(tf.memory().numTensors).to.equal(n);
    ema.dispose();
    m.dispose();
  });

  it('the plugin: step updates, the epoch evaluates the EMA weights and puts the trained ones back, state round-trips, export when better', async () => {
    const opts: Record<string, unknown> = { decay: 0.5, warmup: false };
    validate(plugin.schema!, opts, 'plugin ema', 'plugins.ema');
    expect(opts).to.include({ evaluate: true, export: 'better' });
    const hooks = createHooks();
    // the plugin declares its state in apply's result (the trainer registers it under the plugin's key)
    const state: PluginState = (
      plugin.apply(
        { hooks: tapOnly(hooks), config: {} as PluginApi['config'], registerState() {} },
        opts as unknown as EmaOptions,
      ) as PluginInstance
    ).state!;
    const m = model();
    const bias0 = values(m)[1]![0]!;
    // "accuracy" = first bias value, so the test sees which weights were evaluated
    const ctx = {
      model: m,
      out: dir,
      logger: quiet,
      metrics: [] as EpochMetrics[],
      evaluate: async (mm: tfl.LayersModel) => ({ top1: mm.weights[1]!.read().dataSync()[0]!, loss: 0, top5: 0, confusion: [], count: 1 }),
    } as unknown as TrainContext;
    await hooks.setup.promise(ctx);
    move(m, -1);
    hooks.step.call(ctx); // shadow = 0.5*b0 + 0.5*(b0-1) = b0 - 0.5 > trained b0 - 1
    const trained = values(m);
    const metrics = { epoch: 1, val_top1: bias0 - 1 } as EpochMetrics;
    await hooks.epoch.promise(ctx, metrics);
    expect(metrics.ema_val_top1).to.be.closeTo(bias0 - 0.5, 1e-6);
    expect(values(m)).to.deep.equal(trained);
    ctx.metrics.push(metrics);

    const saved = await state.save();
    expect(saved.json).to.deep.include({ updates: 1 });
    const copy = Object.fromEntries(Object.entries(saved.tensors!).map(([k, t]) => [k, tf.clone(t)]));
    hooks.step.call(ctx); // changes the shadow
    await state.load({ json: saved.json, tensors: copy });
    tf.dispose(Object.values(copy));
    const artifact: Artifact = { format: 'tfjs', dir: join(dir, 'model'), model: m, files: [], report: {} };
    const out = await hooks.export.promise(artifact, ctx);
    expect(out.dir).to.equal(join(dir, 'model-ema'));
    expect(existsSync(join(dir, 'model-ema', 'model.json'))).to.equal(true);
    const loaded = await loadModel(join(dir, 'model-ema'));
    expect(loaded.weights[1]!.read().dataSync()[0]).to.be.closeTo(bias0 - 0.5, 1e-6);
    expect((loaded.getUserDefinedMetadata() as { ema: { updates: number } }).ema.updates).to.equal(1);
    loaded.dispose();
    await hooks.teardown.promise(ctx, {});
    m.dispose();
  });

  it('does not export when the EMA weights are worse', async () => {
    const hooks = createHooks();
    plugin.apply(
      { hooks, config: {} as PluginApi['config'], registerState() {} },
      { decay: 0.5, warmup: false, evaluate: true, export: 'better' },
    );
    const m = model();
    const ctx = {
      model: m,
      out: join(dir, 'worse'),
      logger: quiet,
      metrics: [] as EpochMetrics[],
      evaluate: async (mm: tfl.LayersModel) => ({ top1: mm.weights[1]!.read().dataSync()[0]!, loss: 0 }),
    } as unknown as TrainContext;
    await hooks.setup.promise(ctx);
    move(m, +1);
    hooks.step.call(ctx);
    const metrics = { epoch: 1, val_top1: m.weights[1]!.read().dataSync()[0]! } as EpochMetrics;
    await hooks.epoch.promise(ctx, metrics);
    ctx.metrics.push(metrics);
    const artifact: Artifact = { format: 'tfjs', dir: 'x', model: m, files: [], report: {} };
    expect(await hooks.export.promise(artifact, ctx)).to.equal(artifact);
    expect(existsSync(join(dir, 'worse', 'model-ema'))).to.equal(false);
    await hooks.teardown.promise(ctx, {});
    m.dispose();
  });
});
