import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { evaluateModel, loadModel, MemoryLogger, TricksError, type EpochMetrics, type UserConfig } from '@tricks/core';
import {
  assertHookOrder,
  assertNoLeak,
  assertOptionError,
  cleanup,
  createTestTrainer,
  failAfterEpoch,
  FixtureFailure,
  runFailing,
  runSteps,
  tinyConfig,
  useTestBackend,
} from '@tricks/helper-plugin-test-runner';
import { BEST_DIR, epochDirName, TOP_K_DIR, update, type BestState, type Entry } from '../src/index.js';

interface BestJson {
  epoch: number;
  monitor: string;
  mode: string;
  value: number;
  kept: (Entry & { dir: string })[];
  history: Entry[];
  metrics: EpochMetrics;
}

const readBest = (out: string): BestJson => JSON.parse(readFileSync(join(out, BEST_DIR, 'best.json'), 'utf8'));
const topKDirs = (out: string) =>
  existsSync(join(out, TOP_K_DIR))
    ? readdirSync(join(out, TOP_K_DIR))
        .filter((n) => !n.startsWith('.'))
        .sort()
    : [];

/** The epochs a reference computes from the run's own metrics: the best (first on ties) and the k best. */
function reference(epochs: EpochMetrics[], key: string, mode: 'max' | 'min', k: number) {
  const rows = epochs.map((m) => ({ epoch: m.epoch, value: m[key] as number }));
  const sorted = [...rows].sort((a, b) => (mode === 'max' ? b.value - a.value : a.value - b.value) || a.epoch - b.epoch);
  return { best: sorted[0]!, top: sorted.slice(0, k) };
}

describe('best-checkpoint: the selection rule', () => {
  const run = (values: number[], o: { mode: 'max' | 'min'; topK: number; minDelta: number }) => {
    let s: BestState = { kept: [], history: [] };
    const dropped: number[] = [];
    values.forEach((value, i) => {
      const r = update(s, { epoch: i + 1, value }, o);
      s = r.state;
      dropped.push(...r.dropped.map((e) => e.epoch));
    });
    return { ...s, dropped };
  };

  it('max: keeps the highest value, the first epoch on ties', () => {
    const s = run([0.5, 0.7, 0.6, 0.7, 0.65], { mode: 'max', topK: 1, minDelta: 0 });
    expect(s.best).to.deep.equal({ epoch: 2, value: 0.7 });
    expect(s.kept).to.deep.equal([{ epoch: 2, value: 0.7 }]);
    expect(s.history.map((e) => e.epoch)).to.deep.equal([1, 2]);
  });

  it('min: keeps the lowest value', () => {
    const s = run([2.0, 1.5, 1.7, 1.2, 1.3], { mode: 'min', topK: 1, minDelta: 0 });
    expect(s.best).to.deep.equal({ epoch: 4, value: 1.2 });
    expect(s.history.map((e) => e.epoch)).to.deep.equal([1, 2, 4]);
  });

  it('minDelta: an improvement must be larger than minDelta', () => {
    const s = run([0.5, 0.55, 0.62], { mode: 'max', topK: 1, minDelta: 0.1 });
    expect(s.best).to.deep.equal({ epoch: 3, value: 0.62 });
    expect(s.history.map((e) => e.epoch)).to.deep.equal([1, 3]);
    expect(s.kept).to.deep.equal([s.best]);
  });

  it('topK: keeps the k best, best first, and reports those that drop out', () => {
    const s = run([0.3, 0.5, 0.4, 0.6, 0.2, 0.55], { mode: 'max', topK: 3, minDelta: 0 });
    expect(s.kept.map((e) => e.epoch)).to.deep.equal([4, 6, 2]);
    expect(s.dropped).to.deep.equal([1, 3]);
  });
});

describe('best-checkpoint with the shared runner', function () {
  this.timeout(300000);
  before(() => useTestBackend());

  it('validates its options', async () => {
    await assertOptionError('best-checkpoint', { mode: 'maximum' }, /plugins\.best-checkpoint\.mode.*must be one of "max", "min"/);
    await assertOptionError('best-checkpoint', { topK: 0 }, /plugins\.best-checkpoint\.topK.*must be >= 1/);
    await assertOptionError('best-checkpoint', { topK: 1.5 }, /plugins\.best-checkpoint\.topK.*integer/);
    await assertOptionError('best-checkpoint', { minDelta: -0.1 }, /plugins\.best-checkpoint\.minDelta.*must be >= 0/);
    await assertOptionError('best-checkpoint', { monitr: 'val_loss' }, /did you mean "monitor"/);
  });

  it('a monitored key the epoch does not have is a TricksError naming the option and the available keys', async () => {
    const run = await runFailing({ plugins: [['best-checkpoint', { monitor: 'val_top7' }]], steps: 2 });
    try {
      expect(run.error).to.be.instanceOf(TricksError);
      const e = run.error as TricksError;
      expect(e.message).to.match(/plugins\.best-checkpoint\.monitor.*"val_top7"/);
      expect(e.hint)
        .to.match(/val_top1/)
        .and.match(/val_loss/)
        .and.match(/train_loss/);
      expect(existsSync(join(run.out, BEST_DIR))).to.equal(false);
    } finally {
      cleanup(run);
    }
  });

  it('max (val_top1): model-best holds the best epoch, loads with loadModel and scores the recorded val_top1; no leak', async () => {
    const run = await runSteps({ plugins: ['best-checkpoint'], steps: 4, config: { epochs: 4 } });
    try {
      assertHookOrder(run, 'best-checkpoint', ['setup', 'epoch']);
      assertNoLeak(run);
      const ref = reference(run.result.epochs, 'val_top1', 'max', 1);
      const best = readBest(run.out);
      expect(best).to.include({ epoch: ref.best.epoch, monitor: 'val_top1', mode: 'max', value: ref.best.value });
      expect(best.metrics.epoch).to.equal(ref.best.epoch);
      expect(best.kept).to.deep.equal([{ ...ref.best, dir: BEST_DIR }]);
      expect(topKDirs(run.out)).to.deep.equal([]);
      // a normal tfjs model dir, with the final export's metadata (what `tricks eval --model` reads)
      const model = await loadModel(join(run.out, BEST_DIR));
      try {
        const meta = model.getUserDefinedMetadata() as { tricks: { classNames: string[]; numClasses: number }; bestCheckpoint: Entry };
        expect(meta.tricks.numClasses).to.equal(10);
        expect(meta.tricks.classNames).to.have.length(10);
        expect(meta.bestCheckpoint).to.include({ epoch: ref.best.epoch, value: ref.best.value });
        const ctx = run.trainer.ctx;
        const ev = await evaluateModel(model, ctx.val, ctx.config.evalBatchSize);
        expect(ev.top1).to.equal(best.value);
      } finally {
        model.dispose();
      }
    } finally {
      run.trainer.dispose();
      cleanup(run);
    }
  });

  it('min (val_loss) with topK 2: model-best is the lowest loss, top-k holds the two lowest and prunes the rest', async () => {
    const run = await runSteps({
      plugins: [['best-checkpoint', { monitor: 'val_loss', mode: 'min', topK: 2 }]],
      steps: 4,
      config: { epochs: 5 },
    });
    try {
      const ref = reference(run.result.epochs, 'val_loss', 'min', 2);
      const best = readBest(run.out);
      expect(best).to.include({ epoch: ref.best.epoch, value: ref.best.value, mode: 'min', monitor: 'val_loss' });
      expect(best.kept.map((e) => e.epoch)).to.deep.equal(ref.top.map((e) => e.epoch));
      expect(best.kept[0]!.dir).to.equal(join(TOP_K_DIR, epochDirName(ref.best.epoch)));
      expect(topKDirs(run.out)).to.deep.equal(ref.top.map((e) => epochDirName(e.epoch)).sort());
      for (const e of ref.top) expect(existsSync(join(run.out, TOP_K_DIR, epochDirName(e.epoch), 'model.json'))).to.equal(true);
      // the losses fall on this run, so something was pruned along the way
      const saves = run.logger.lines.filter((l) => /best-checkpoint: epoch \d+ .*(is the best|enters the top)/.test(l));
      expect(saves.length).to.be.greaterThan(2);
    } finally {
      run.trainer.dispose();
      cleanup(run);
    }
  });
});

describe('best-checkpoint resumes', function () {
  this.timeout(300000);
  before(() => useTestBackend());

  it('a run that fails after epoch 2 and resumes ends with the same best.json and top-k dirs as an uninterrupted run', async () => {
    const plugins: UserConfig['plugins'] = [['best-checkpoint', { monitor: 'val_loss', mode: 'min', topK: 2 }]];
    const config: UserConfig = { epochs: 5, checkpoint: true };
    const full = await runSteps({ plugins, steps: 4, config });
    const cut = await runFailing({ plugins, steps: 4, config, builtins: [failAfterEpoch(2)] });
    try {
      expect(cut.error).to.be.instanceOf(FixtureFailure);
      cut.trainer.dispose();
      const afterCut = readBest(cut.out);
      expect(afterCut.metrics.epoch).to.be.at.most(2);
      const user: UserConfig = { ...tinyConfig(config), plugins, out: cut.out, limit: { ...tinyConfig().limit, steps: 4 } };
      const resumed = await createTestTrainer(user, { logger: new MemoryLogger() });
      const r = await resumed.run({ resume: true });
      resumed.dispose();
      expect(r.epochs.map((m) => m.val_loss)).to.deep.equal(full.result.epochs.map((m) => m.val_loss));
      const a = readBest(full.out);
      const b = readBest(cut.out);
      const strip = ({ metrics: _m, ...rest }: BestJson) => rest;
      expect(strip(b)).to.deep.equal(strip(a));
      // the history spans both parts of the run: state from before the cut was restored
      expect(b.history.map((e) => e.epoch)).to.deep.equal(a.history.map((e) => e.epoch));
      expect(b.history[0]!.epoch).to.equal(1);
      expect(topKDirs(cut.out)).to.deep.equal(topKDirs(full.out));
    } finally {
      full.trainer.dispose();
      cleanup(full);
      cleanup(cut);
    }
  });
});
