/**
 * The generation store and the run-folder guard on real checkpoints of a tiny run: every state a kill can
 * leave between the steps of a save, each file of the newest generation damaged (fallback to the previous,
 * or one error naming the file when none is intact), a generation from before manifests, the lock against a
 * live and a dead process, the "another run" refusal and --overwrite, and debris removal.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { definePlugin, MemoryLogger, TricksError, type PluginDefinition } from '@tricks/core';
import { testKit } from '@tricks/core/testing';
import { dataBuiltin } from '@tricks/data';
import { modelsBuiltin } from '@tricks/models';
import { wasmBuiltin, wasmProvider } from '@tricks/backend-wasm';
import { checkpointBuiltin, claimRunFolder, DirCheckpointer, LOCK, MANIFEST, readManifest } from '../src/index.js';

const { testBackend, tmp, tiny, createTestTrainer } = testKit({
  builtins: [checkpointBuiltin, dataBuiltin, modelsBuiltin, wasmBuiltin] as PluginDefinition[],
  backends: { wasm: wasmProvider },
});

const generationOf = async (dir: string) => (await readManifest(dir))?.generation;
const copy = (from: string) => {
  const to = join(tmp(), 'run');
  cpSync(from, to, { recursive: true });
  return to;
};

describe('checkpoint generations', function () {
  this.timeout(300000);
  let run: string;

  before(async () => {
    await testBackend();
    const cfg = tiny({ epochs: 2, checkpoint: true });
    const trainer = await createTestTrainer(cfg, { logger: new MemoryLogger() });
    await trainer.run();
    trainer.dispose();
    run = cfg.out!;
  });

  it('keeps the newest generation in checkpoint/ and the previous one in checkpoint.old, each sealed by a manifest', async () => {
    expect(await generationOf(join(run, 'checkpoint'))).to.equal(2);
    expect(await generationOf(join(run, 'checkpoint.old'))).to.equal(1);
    const m = (await readManifest(join(run, 'checkpoint')))!;
    expect(Object.keys(m.files).sort()).to.deep.equal([
      'model/model.json',
      'model/weights.bin',
      'optimizer.bin',
      'optimizer.json',
      'plugins.bin',
      'state.json',
    ]);
    expect(m.epoch).to.equal(2);
    expect(readdirSync(run).filter((f) => f.startsWith('.'))).to.deep.equal([]);
    const state = await new DirCheckpointer().loadState(join(run, 'checkpoint'));
    expect(state.epoch).to.equal(2);
  });

  it('a kill between the two renames (only checkpoint.old and the sealed new one): resumes from the new one and puts it in place', async () => {
    const out = copy(run);
    const dir = join(out, 'checkpoint');
    // the state a kill leaves after `checkpoint -> checkpoint.old`: generation 2 as the sealed tmp, 1 as .old
    rmSync(`${dir}.old`, { recursive: true });
    renameSync(dir, `${dir}.old`);
    cpSync(`${dir}.old`, join(out, '.checkpoint.tmp-1-2-3'), { recursive: true });
    writeFileSync(
      join(out, '.checkpoint.tmp-1-2-3', MANIFEST),
      JSON.stringify({ ...(await readManifest(`${dir}.old`)), generation: 3 }, null, 1),
    );
    mkdirSync(join(out, '.checkpoint.tmp-4-5-6')); // an unfinished save: no manifest
    const store = new DirCheckpointer(new MemoryLogger());
    expect(store.exists(dir)).to.equal(`${dir}.old`);
    expect(await store.recover(dir)).to.equal(dir);
    expect(await generationOf(dir)).to.equal(3);
    expect(await generationOf(`${dir}.old`)).to.equal(2);
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).to.deep.equal([]);
  });

  it('a kill after the new one was sealed, before any rename: the sealed tmp is the newest and wins', async () => {
    const out = copy(run);
    const dir = join(out, 'checkpoint');
    cpSync(dir, join(out, '.checkpoint.tmp-9-9-9'), { recursive: true });
    const m = (await readManifest(dir))!;
    writeFileSync(join(out, '.checkpoint.tmp-9-9-9', MANIFEST), JSON.stringify({ ...m, generation: 3 }));
    const store = new DirCheckpointer(new MemoryLogger());
    await store.recover(dir);
    expect([await generationOf(dir), await generationOf(`${dir}.old`)]).to.deep.equal([3, 2]);
    // the next save goes on from the highest generation
    expect(readdirSync(out).some((f) => f.startsWith('.checkpoint.tmp-'))).to.equal(false);
  });

  for (const file of ['state.json', 'optimizer.bin', 'model/weights.bin', 'plugins.bin', MANIFEST]) {
    it(`a damaged ${file} in the newest generation falls back to the previous one with a warning`, async () => {
      const out = copy(run);
      const dir = join(out, 'checkpoint');
      const path = join(dir, file);
      if (file === 'plugins.bin') writeFileSync(path, Buffer.alloc(8, 1));
      else if (file === MANIFEST) writeFileSync(path, '{"format": 1, "gener');
      else truncateSync(path, Math.floor(readFileSync(path).length / 2));
      const logger = new MemoryLogger();
      const state = await new DirCheckpointer(logger).loadState(dir);
      expect(state.epoch, 'generation 1 was written after epoch 1').to.equal(1);
      const warning = logger.lines.find((l) => l.startsWith('warning:')) ?? '';
      expect(warning).to.include(`the newest checkpoint is damaged: ${path}`);
      expect(warning).to.include(`resuming from the previous one, ${dir}.old`);
      expect(existsSync(`${dir}.damaged`)).to.equal(true);
      expect(await generationOf(dir)).to.equal(1);
    });
  }

  it('both generations damaged: one TricksError naming the newest damaged file', async () => {
    const out = copy(run);
    const dir = join(out, 'checkpoint');
    writeFileSync(join(dir, 'optimizer.bin'), Buffer.alloc(16));
    writeFileSync(join(`${dir}.old`, 'state.json'), '{}');
    const err = await new DirCheckpointer(new MemoryLogger()).loadState(dir).catch((e) => e);
    expect(err).to.be.instanceOf(TricksError);
    expect(err.message).to.match(new RegExp(`^checkpoint file ${dir}/optimizer.bin has 16 bytes, the manifest [\\d,]+ \\(truncated`));
    expect(err.message).to.include('restore the run folder from a backup');
  });

  it('64 random bytes inside optimizer.bin (same size) are caught by the SHA-256, not resumed into a ruined model', async () => {
    const out = copy(run);
    const dir = join(out, 'checkpoint');
    const f = join(dir, 'optimizer.bin');
    const bytes = readFileSync(f);
    for (let i = 0; i < 64; i++) bytes[100 + i] = (bytes[100 + i]! + 1 + i) & 255;
    writeFileSync(f, bytes);
    rmSync(`${dir}.old`, { recursive: true });
    const err = await new DirCheckpointer().loadState(dir).catch((e) => e);
    expect(err.message).to.include(`checkpoint file ${f} does not match its SHA-256 in manifest.json`);
  });

  it('a generation written before manifests loads, unverified, with a warning', async () => {
    const out = copy(run);
    const dir = join(out, 'checkpoint');
    rmSync(`${dir}.old`, { recursive: true });
    rmSync(join(dir, MANIFEST));
    const logger = new MemoryLogger();
    expect((await new DirCheckpointer(logger).loadState(dir)).epoch).to.equal(2);
    expect(logger.lines.join('\n')).to.match(/has no manifest\.json \(written by an older version\): its files cannot be verified/);
  });

  it('resumes through the trainer from a fallback generation, and metrics.jsonl keeps one row per epoch', async () => {
    const out = copy(run);
    writeFileSync(join(out, 'checkpoint', 'state.json'), '{"damaged": true}');
    const logger = new MemoryLogger();
    const trainer = await createTestTrainer({ ...tiny({ epochs: 2, checkpoint: true }), out }, { logger });
    const r = await trainer.run({ resume: true });
    trainer.dispose();
    expect(r.epochs.map((e) => e.epoch)).to.deep.equal([1, 2]);
    const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(rows.map((l) => JSON.parse(l).epoch)).to.deep.equal([1, 2]);
    expect(logger.lines.join('\n')).to.match(/resumed from .*: epoch 2, step 0/);
  });
});

describe('a checkpoint written while layers were frozen', function () {
  this.timeout(300000);

  it('resumes into a model whose layers are all trainable (model.weights reorders), with the same weights and momentum', async () => {
    await testBackend();
    // freezes the first conv in epoch 1 only, as finetune freezes a backbone; the epoch-1 checkpoint is written frozen
    const freeze = definePlugin({
      name: 'test:freeze-first',
      description: 'the first layer with weights frozen in epoch 1',
      apply(api) {
        api.hooks.epochStart.tap({ name: 'test:freeze-first' }, (ctx) => {
          ctx.model.layers.find((l) => l.weights.length > 0)!.trainable = ctx.epoch > 0;
        });
      },
    });
    const user = () => tiny({ epochs: 2, checkpoint: true, optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9 } });
    const full = await createTestTrainer(user(), { logger: new MemoryLogger(), builtins: [freeze] });
    const a = await full.run();
    const weightsA = full.ctx.model.getWeights().map((w) => Array.from(w.dataSync()));
    full.dispose();
    const cfg = user();
    const cut = await createTestTrainer({ ...cfg, epochs: 1 }, { logger: new MemoryLogger(), builtins: [freeze] });
    await cut.run();
    cut.dispose();
    const resumed = await createTestTrainer(cfg, { logger: new MemoryLogger(), builtins: [freeze] });
    const b = await resumed.run({ resume: true });
    const weightsB = resumed.ctx.model.getWeights().map((w) => Array.from(w.dataSync()));
    resumed.dispose();
    expect(b.epochs.map((e) => [e.train_loss, e.val_loss])).to.deep.equal(a.epochs.map((e) => [e.train_loss, e.val_loss]));
    expect(weightsB).to.deep.equal(weightsA);
  });
});

describe('the run-folder guard', function () {
  this.timeout(120000);

  it('refuses a folder that holds another run, unless resuming; --overwrite removes that run first', () => {
    const out = tmp();
    writeFileSync(join(out, 'metrics.jsonl'), '{"epoch":1}\n');
    mkdirSync(join(out, 'checkpoint'));
    writeFileSync(join(out, 'photo.jpg'), 'not ours');
    expect(() => claimRunFolder(out)).to.throw(TricksError, /holds another run \(metrics\.jsonl, checkpoint\)/);
    expect(existsSync(join(out, LOCK)), 'a refused claim leaves no lock').to.equal(false);
    claimRunFolder(out, { resumed: true })();
    const logger = new MemoryLogger();
    const release = claimRunFolder(out, { overwrite: true, logger });
    expect(readdirSync(out).sort()).to.deep.equal([LOCK, 'photo.jpg']);
    expect(logger.lines.join('\n')).to.include("--overwrite: removed the previous run's metrics.jsonl, checkpoint");
    release();
    expect(readdirSync(out)).to.deep.equal(['photo.jpg']);
  });

  it('refuses --out naming a file', () => {
    const file = join(tmp(), 'x');
    writeFileSync(file, 'mine');
    expect(() => claimRunFolder(file)).to.throw(TricksError, /--out .* is a file, not a folder/);
    expect(readFileSync(file, 'utf8')).to.equal('mine');
  });

  it('a lock held by a live process is refused with its PID; a dead one is replaced with a warning', async () => {
    const out = tmp();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      writeFileSync(join(out, LOCK), JSON.stringify({ pid: child.pid, host: (await import('node:os')).hostname(), started: 'then' }));
      expect(() => claimRunFolder(out)).to.throw(TricksError, new RegExp(`is in use by another run \\(PID ${child.pid} on `));
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const logger = new MemoryLogger();
    const release = claimRunFolder(out, { logger });
    expect(logger.lines.join('\n')).to.include(`replaced the lock of a run that is gone (PID ${child.pid})`);
    expect(JSON.parse(readFileSync(join(out, LOCK), 'utf8')).pid).to.equal(process.pid);
    // the same process cannot claim it twice either (two trainers in one process)
    expect(() => claimRunFolder(out)).to.throw(TricksError, /in use by another run/);
    release();
  });

  it("removes the temp files and folders of interrupted writes, and keeps a resumed run's sealed checkpoint tmp for the store", () => {
    const out = tmp();
    mkdirSync(join(out, 'model'));
    writeFileSync(join(out, 'model', '.weights.bin.tmp-12-1700000000000-3'), 'half');
    mkdirSync(join(out, '.checkpoint.tmp-12-1700000000000-4'));
    writeFileSync(join(out, '.run.json.tmp-12-1700000000000-5'), '{');
    writeFileSync(join(out, '.keep-me'), 'a user file');
    claimRunFolder(out, { resumed: true })();
    expect(readdirSync(out).sort()).to.deep.equal(['.checkpoint.tmp-12-1700000000000-4', '.keep-me', 'model']);
    expect(readdirSync(join(out, 'model'))).to.deep.equal([]);
    claimRunFolder(out)();
    expect(readdirSync(out).sort()).to.deep.equal(['.keep-me', 'model']);
  });
});
