import { expect } from 'chai';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { ContainerModule } from 'inversify';
import {
  createHooks,
  definePlugin,
  tapOnly,
  TOKENS,
  type Batch,
  type PluginDefinition,
  NonFiniteLoss,
  StopTraining,
  TricksError,
  MemoryLogger,
  loadModel,
  SGD,
  type OptimizerOptions,
  OptimizerRegistry,
  type EpochMetrics,
  type MetricsSink,
  METRIC_KEYS,
} from '@tricks/core';
import { testBackend, tiny, tmp, createTestTrainer } from './helpers.js';

const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'core', 'fixtures');
const plugin = (name: string) => join(fixtures, 'plugins', `${name}.mjs`);
const quiet = () => ({ logger: new MemoryLogger() });
const lines = (out: string) =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('trainer', function () {
  this.timeout(120000);
  before(testBackend);

  it('trains one short epoch on real digits and writes metrics, checkpoint and model', async () => {
    const cfg = tiny({ limit: { train: 512, val: 256, steps: 12 }, checkpoint: true, optimizer: { lr: 0.1 } });
    const trainer = await createTestTrainer(cfg, quiet());
    const result = await trainer.run();
    const rows = lines(cfg.out!);
    expect(rows).to.have.length(1);
    expect(Object.keys(rows[0])).to.deep.equal([...METRIC_KEYS]);
    expect(rows[0].val_top1).to.be.greaterThan(0.3); // 10 classes: chance is 0.1
    expect(rows[0].train_loss).to.be.lessThan(2.3);
    expect(result.epochs[0].val_top5).to.be.at.least(rows[0].val_top1);
    expect(readdirSync(join(cfg.out!, 'checkpoint')).sort()).to.deep.equal([
      'manifest.json',
      'model',
      'optimizer.bin',
      'optimizer.json',
      'plugins.bin',
      'state.json',
    ]);
    const m = await loadModel(join(cfg.out!, 'model'));
    const x = tf.zeros([2, 28, 28, 1]);
    const a = m.predict(x) as tf.Tensor;
    const b = trainer.ctx.model.predict(x) as tf.Tensor;
    expect(Array.from(await a.data())).to.deep.equal(Array.from(await b.data()));
    tf.dispose([x, a, b]);
    m.dispose();
  });

  it('runs taps in stage order, whatever order they were registered in', async () => {
    const trainer = await createTestTrainer(tiny({ plugins: [plugin('order')], limit: { train: 64, val: 32, steps: 1 } }), quiet());
    const calls: string[] = [];
    for (const [name, hook] of Object.entries(trainer.hooks)) {
      (hook as { intercept(i: object): void }).intercept({ call: () => calls.push(name) });
    }
    const batchTaps = (trainer.hooks.batch as unknown as { taps: { name: string }[] }).taps.map((t) => t.name);
    const lossTaps = (trainer.hooks.loss as unknown as { taps: { name: string }[] }).taps.map((t) => t.name);
    expect(batchTaps).to.deep.equal(['order:augment', 'order:mix']);
    expect(lossTaps).to.deep.equal(['order:loss', 'order:compress']);
    await trainer.run();
    // the last export tap reloads and evaluates the exported model: evalBatch runs inside export; the report's
    // interpretation (top losses, Grad-CAM) runs it again inside done
    expect(calls.filter((c, i) => c !== calls[i - 1])).to.deep.equal([
      'neck',
      'model',
      'setup',
      'epochStart',
      'decode',
      'batch',
      'loss',
      'step',
      'stepEnd',
      'evalBatch',
      'epoch',
      'export',
      'evalBatch',
      'done',
      'evalBatch',
      'teardown',
    ]);
  });

  it('keeps the tensor count stable over steps (no leaks)', async () => {
    const trainer = await createTestTrainer(tiny({ limit: { train: 256, val: 64, steps: 6 } }), quiet());
    const counts: number[] = [];
    trainer.hooks.step.tap('count', () => void counts.push(tf.memory().numTensors));
    await trainer.run();
    expect(counts).to.have.length(6);
    expect(new Set(counts.slice(1)).size, `tensors after each step: ${counts}`).to.equal(1);
  });

  it('dispose() frees the models that export taps produced, as well as the training model', async () => {
    const leftAfter = async (withCopy: boolean) => {
      const n0 = tf.memory().numTensors;
      const trainer = await createTestTrainer(tiny({ limit: { train: 64, val: 32, steps: 2 } }), quiet());
      // an export tap that returns a new model, as prune (shrunk) and qat (quantized) do
      if (withCopy)
        trainer.hooks.export.tapPromise('copy', async (a) => {
          const copy = await loadModel(a.dir);
          return { ...a, format: 'copy', model: copy };
        });
      await trainer.run();
      trainer.dispose();
      return tf.memory().numTensors - n0;
    };
    const plain = await leftAfter(false);
    expect(await leftAfter(true)).to.equal(plain);
  });

  it('lets a user rebind a service: a custom optimizer and a custom metrics sink', async () => {
    const written: EpochMetrics[] = [];
    let created = 0;
    class CountingSGD extends SGD {}
    class Registry extends OptimizerRegistry {
      create(_name: string, opts: OptimizerOptions) {
        created++;
        return new CountingSGD(opts);
      }
    }
    const sink: MetricsSink = { open: async () => {}, write: async (m) => void written.push(m), close: async () => {} };
    const modules = [
      new ContainerModule(({ rebind }) => {
        rebind(TOKENS.Optimizers).toConstantValue(new Registry());
        rebind(TOKENS.MetricsSink).toConstantValue(sink);
      }),
    ];
    const cfg = tiny();
    const trainer = await createTestTrainer(cfg, { ...quiet(), modules });
    await trainer.run();
    expect(created).to.equal(1);
    expect(trainer.ctx.optimizer).to.be.instanceOf(CountingSGD);
    expect(written).to.have.length(1);
    expect(existsSync(join(cfg.out!, 'metrics.jsonl'))).to.equal(false); // the JSONL sink was replaced
  });

  it('resolves a third-party plugin package by short name, with the ContainerModule it ships', async () => {
    const cwd = join(fixtures, 'project');
    const mod = await import(join(cwd, 'node_modules', 'tricks-plugin-hello', 'index.js'));
    const trainer = await createTestTrainer(tiny({ plugins: [['hello', { greeting: 'hey' }]] }), { ...quiet(), cwd });
    expect(trainer.config.plugins[0].source).to.equal('tricks-plugin-hello');
    await trainer.run();
    expect(mod.seen.steps).to.equal(4);
    expect(mod.seen.greeting).to.equal('hey');
    expect(mod.seen.epochs).to.deep.equal([1]); // its sink was added next to the JSONL one
  });

  it('gives the same losses after a resume as without one (same seed and backend)', async () => {
    const base = { epochs: 3, checkpoint: true, limit: { train: 256, val: 64, steps: 4 }, optimizer: { lr: 0.05 } };
    const full = tiny(base);
    await (await createTestTrainer(full, quiet())).run();
    const cut = tiny({ ...base, epochs: 1 });
    await (await createTestTrainer(cut, quiet())).run();
    const resumed = await createTestTrainer({ ...tiny(base), out: cut.out }, quiet());
    await resumed.run({ resume: true });
    const a = lines(full.out!).map((r) => [r.train_loss, r.val_loss]);
    const b = lines(cut.out!).map((r) => [r.train_loss, r.val_loss]);
    expect(b).to.have.length(3);
    expect(b).to.deep.equal(a);
  });

  it('an abort mid-epoch (as SIGTERM) and a resume give the uninterrupted rows, the lr of a cosine schedule too', async () => {
    // stops after step 3 (inside epoch 1) and after step 8 (the last step of epoch 2, before its evaluation: the
    // resumed run takes no step of that epoch and must still report the lr its last step used)
    const base = { epochs: 3, checkpoint: true, limit: { train: 256, val: 64, steps: 4 }, schedule: { name: 'cosine' } };
    const full = tiny(base);
    await (await createTestTrainer(full, quiet())).run();
    const out = tmp();
    for (const at of [3, 8]) {
      const controller = new AbortController();
      const stop = definePlugin({
        name: 'test:stop',
        description: 'aborts after a step',
        apply(api) {
          api.hooks.stepEnd.tap('test:stop', (ctx) => void (ctx.step === at && controller.abort('SIGTERM')));
        },
      }) as PluginDefinition;
      const logger = new MemoryLogger();
      const cut = await createTestTrainer({ ...tiny(base), out }, { logger, builtins: [stop] });
      const err = await cut.run({ resume: at !== 3, signal: controller.signal }).catch((e) => e);
      expect((err as Error).message).to.match(/^SIGTERM: stopped after the current step/);
      if (at === 8) expect(logger.lines.join('\n')).to.match(/resumed from .*: epoch 1, step 3 of it/);
      cut.dispose();
    }
    const logger = new MemoryLogger();
    await (await createTestTrainer({ ...tiny(base), out }, { logger })).run({ resume: true });
    expect(logger.lines.join('\n')).to.match(/resumed from .*: epoch 2, step 4 of it/);
    const figures = (o: string) => lines(o).map((r) => [r.train_loss, r.val_loss, r.val_top1, r.lr]);
    expect(figures(out)).to.have.length(3);
    expect(new Set(figures(out).map((r) => r[3])).size, 'cosine: a new lr every epoch').to.equal(3);
    expect(figures(out)).to.deep.equal(figures(full.out!));
  });

  it('stops on a NaN loss with the epoch and step, before the update, keeping the last good checkpoint', async () => {
    const cfg = tiny({ epochs: 2, checkpoint: true, plugins: [[plugin('nan'), { epoch: 2, at: 3 }]] });
    const trainer = await createTestTrainer(cfg, quiet());
    let err: unknown;
    await trainer.run().catch((e) => (err = e));
    expect(err).to.be.instanceOf(NonFiniteLoss);
    expect((err as Error).message).to.match(/loss is NaN at epoch 2, step 3/);
    const state = JSON.parse(readFileSync(join(cfg.out!, 'checkpoint', 'state.json'), 'utf8'));
    expect(state.epoch).to.equal(1);
    const w = trainer.ctx.model.getWeights().map((t) => t.dataSync());
    expect(w.every((a) => a.every(Number.isFinite))).to.equal(true);
  });

  it('warns once when the loss diverges (a forced lr of 5), naming --lr; not on a sane run; stops when asked', async () => {
    const run = async (lr: number, divergence?: 'stop') => {
      const logger = new MemoryLogger();
      const cfg = tiny({
        limit: { train: 768, val: 64, steps: 24 },
        optimizer: { lr },
        ...(divergence ? { divergence, checkpoint: true, epochs: 2 } : {}),
      });
      const trainer = await createTestTrainer(cfg, { logger });
      const err = await trainer.run().then(
        () => undefined,
        (e: Error) => e,
      );
      return { err, out: cfg.out!, warnings: logger.lines.filter((l) => l.startsWith('warning:')) };
    };
    // small-cnn with PyTorch's init and batch norm still trains at lr 0.5; 5 diverges
    const high = await run(5);
    expect(high.err).to.equal(undefined); // a warning, not a stop
    expect(high.warnings).to.have.length(1);
    expect(high.warnings[0])
      .to.match(/the training loss is diverging: epoch 1's mean so far \(\d+ steps\) is/)
      .and.include('(--lr 5;')
      .and.include('Try --lr 0.5 (10x lower)');
    expect((await run(0.05)).warnings).to.deep.equal([]);
    const stopped = await run(5, 'stop');
    expect(stopped.err).to.be.instanceOf(TricksError);
    expect(stopped.err!.message).to.match(/diverging.*stopped \(--on-divergence stop\)/s);
    expect(existsSync(join(stopped.out, 'checkpoint')), 'it stopped in the first epoch: no checkpoint yet').to.equal(false);
  });

  it('skips cancelled batches and stops cleanly on StopTraining', async () => {
    const trainer = await createTestTrainer(
      tiny({ plugins: [[plugin('cancel'), { stopAt: 4 }]], limit: { train: 256, val: 64, steps: 8 } }),
      quiet(),
    );
    let steps = 0;
    trainer.hooks.step.tap('count', () => void steps++);
    const r = await trainer.run();
    expect(r.stopped).to.equal('enough');
    expect(steps).to.equal(2); // steps 0 and 2 ran; 1 was cancelled; 3 stopped the run
    expect(r.epochs[0].skipped_batches).to.equal(1);
  });

  it('ends the run after the epoch whose epoch tap threw StopTraining, its checkpoint written', async () => {
    const stopper = definePlugin({
      name: 'test:stopper',
      description: 'stops after epoch 2',
      apply(api) {
        api.hooks.epoch.tapPromise('test:stopper', async (_ctx, metrics) => {
          if (metrics.epoch === 2) throw new StopTraining('stopper: enough epochs');
        });
      },
    }) as PluginDefinition;
    const cfg = tiny({ epochs: 4, checkpoint: true, limit: { train: 128, val: 32, steps: 2 } });
    const trainer = await createTestTrainer(cfg, { ...quiet(), builtins: [stopper] });
    const later: number[] = [];
    trainer.hooks.epoch.tapPromise({ name: 'test:later', stage: 500 }, async (_ctx, m) => void later.push(m.epoch));
    const r = await trainer.run();
    expect(r.stopped).to.equal('stopper: enough epochs');
    expect(r.epochs.map((m) => m.epoch)).to.deep.equal([1, 2]);
    expect(later).to.deep.equal([1, 2]); // the taps after the thrower still ran on epoch 2
    expect(lines(cfg.out!)).to.have.length(2);
    const state = JSON.parse(readFileSync(join(cfg.out!, 'checkpoint', 'state.json'), 'utf8'));
    expect(state.epoch).to.equal(2);
    expect(existsSync(join(cfg.out!, 'model', 'model.json'))).to.equal(true);
  });

  it('says so when the batch size is larger than the dataset', async () => {
    const trainer = await createTestTrainer(tiny({ batchSize: 100, limit: { train: 50, val: 20 } }), quiet());
    let err: unknown;
    await trainer.run().catch((e) => (err = e));
    expect(err).to.be.instanceOf(TricksError);
    expect((err as Error).message).to.match(/batch size 100 is larger than the training set \(50 items/);
  });

  it('fails early on a plugin built for another core version, naming both versions', async () => {
    const cwd = tmp('tricks-compat-');
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const d = join(cwd, 'node_modules', 'tricks-plugin-old');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(cwd, 'package.json'), '{"type":"module"}');
    writeFileSync(join(d, 'package.json'), '{"name":"tricks-plugin-old","type":"module","exports":"./index.js"}');
    writeFileSync(join(d, 'index.js'), "export default { name: 'old', description: '', core: '^9.0.0', apply() {} };");
    let err: unknown;
    await createTestTrainer(tiny({ plugins: ['old'] }), { ...quiet(), cwd }).catch((e) => (err = e));
    expect((err as Error).message).to.match(/requires @tricks\/core \^9\.0\.0, but this is @tricks\/core 0\.1\.0/);
  });
});

describe('the plugin contract: tap-only hooks, before, evalTransform', function () {
  this.timeout(120000);
  before(testBackend);

  it('gives plugins tap-only facades (api.hooks, ctx.hooks), keeps the real hooks on the trainer, and ctx.evalTransform runs evalBatch', async () => {
    const seen: Record<string, unknown> = {};
    const probe = definePlugin({
      name: 'test:probe',
      description: 'looks at the hooks it gets',
      apply(api) {
        seen.api = Object.keys(api.hooks.batch).sort();
        seen.apiCall = (api.hooks.loss as unknown as { call?: unknown }).call;
        api.hooks.evalBatch.tap('test:probe', (b) => ({ ...b, meta: { ...b.meta, probed: true } }));
        api.hooks.setup.tapPromise('test:probe', async (ctx) => {
          seen.ctxPromise = (ctx.hooks.setup as unknown as { promise?: unknown }).promise;
          const x = tf.zeros([1, 28, 28, 1]) as tf.Tensor4D,
            y = tf.zeros([1, 10]) as tf.Tensor2D;
          const b = ctx.evalTransform({ x, y, meta: { indices: new Int32Array(1), labels: new Int32Array(1), epoch: 0, step: 0 } });
          seen.transformed = b.meta.probed;
          tf.dispose([x, y]);
        });
      },
    }) as PluginDefinition;
    const trainer = await createTestTrainer(tiny({ limit: { train: 64, val: 32, steps: 1 } }), { ...quiet(), builtins: [probe] });
    await trainer.run();
    expect(seen.api).to.deep.equal(['tap', 'tapAsync', 'tapPromise', 'withOptions']);
    expect(seen.apiCall).to.equal(undefined);
    expect(seen.ctxPromise).to.equal(undefined);
    expect(seen.transformed).to.equal(true);
    expect(typeof trainer.hooks.loss.call).to.equal('function');
  });

  it('orders a `before` tap before the named one whatever the registration order, without moving it out of its stage', () => {
    const order = (first: 'mix' | 'cut') => {
      const hooks = createHooks();
      const h = tapOnly(hooks);
      const id = (b: Batch) => b;
      h.batch.tap({ name: 'augment', stage: -100 }, id);
      const cut = () => h.batch.tap({ name: 'cutmix', stage: 0, before: 'mixup' }, id);
      const mix = () => h.batch.tap({ name: 'mixup', stage: 0 }, id);
      if (first === 'cut') {
        cut();
        mix();
      } else {
        mix();
        cut();
      }
      h.batch.withOptions({ stage: 400 }).tap('report', id);
      // a tap asking to precede one of an earlier stage, registered first: moved before it when it comes
      h.batch.tap({ name: 'early', stage: 10, before: 'late' }, id);
      h.batch.tap({ name: 'late', stage: 5 }, id);
      return (hooks.batch as unknown as { taps: { name: string }[] }).taps.map((t) => t.name);
    };
    expect(order('cut')).to.deep.equal(['augment', 'cutmix', 'mixup', 'early', 'late', 'report']);
    expect(order('mix')).to.deep.equal(['augment', 'cutmix', 'mixup', 'early', 'late', 'report']);
  });
});
