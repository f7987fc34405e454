import { expect } from 'chai';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { etaSeconds } from '../src/ablate/ablate.js';
import { planAblation, describeStep } from '../src/ablate/plan.js';
import { runOne, specHash, type RunRecord } from '../src/ablate/run.js';
import { ablationMarkdown, std, summarize, summarizeRuns, verdict } from '../src/ablate/summary.js';
import { ladderSpec } from '../src/report/charts.js';
import { TricksError, MemoryLogger, definePlugin, resolveConfig } from '@tricks/core';
import { testBackend, tmp } from './helpers.js';
import { writeTinyPreset } from '@tricks/core/testing';

const rec = (ladderStep: number, seed: number, top1: number, stepName = `step${ladderStep}`): RunRecord => ({
  id: `s${ladderStep + 1}-seed${seed}`,
  stepName,
  trick: `trick${ladderStep}`,
  ladderStep,
  seed,
  top1,
  seconds: 10 + seed,
  epochs: [
    { epoch: 1, train_loss: 1, val_loss: 1, val_top1: top1 - 0.1, val_top5: 0.9, lr: 0.1, images_per_sec: 100, seconds: 5 },
    { epoch: 2, train_loss: 0.5, val_loss: 0.8, val_top1: top1, val_top5: 0.95, lr: 0.01, images_per_sec: 120, seconds: 5 + seed },
  ],
});

describe('ablation summary', () => {
  it('ETA: the mean run time times the runs left, over the jobs that run at once', () => {
    // 4 runs of 2 min finished at --jobs 2, 6 left: 3 more pairs, 6 min (it printed 3.2 min, halved twice)
    expect(etaSeconds(120, 6, 2)).to.equal(360);
    expect(etaSeconds(120, 1, 2)).to.equal(120); // the last run runs alone
    expect(etaSeconds(120, 5, 1)).to.equal(600);
  });

  it('computes mean, sample std, the step-to-step difference and its standard error', () => {
    const runs = [rec(0, 0, 0.8), rec(0, 1, 0.82), rec(0, 2, 0.84), rec(1, 0, 0.85), rec(1, 1, 0.86), rec(1, 2, 0.87)];
    const s = summarizeRuns(runs);
    expect(s.steps).to.have.length(2);
    expect(s.steps[0].mean).to.be.closeTo(0.82, 1e-12);
    expect(s.steps[0].std).to.be.closeTo(0.02, 1e-12); // sqrt(((0.02)^2 * 2) / 2)
    expect(s.steps[1].delta).to.be.closeTo(0.04, 1e-12);
    expect(s.steps[1].deltaSe).to.be.closeTo(Math.sqrt(0.02 ** 2 / 3 + 0.01 ** 2 / 3), 1e-12);
    expect(verdict(s.steps[1])).to.match(/helps/); // 0.04 / 0.0129 > 2
    expect(s.steps[0].seconds).to.equal(11);
    expect(std([1])).to.equal(0);
  });

  it('says "within noise" when the difference is under two standard errors, and keeps the teacher apart', () => {
    const runs = [
      rec(0, 0, 0.8),
      rec(0, 1, 0.84),
      rec(1, 0, 0.81),
      rec(1, 1, 0.84),
      { ...rec(0, 0, 0.9), id: 'teacher', role: 'teacher' as const },
    ];
    const s = summarizeRuns(runs);
    expect(s.steps.map((x) => x.n)).to.deep.equal([2, 2]);
    expect(verdict(s.steps[1])).to.match(/within noise/);
    expect(s.teacher?.top1).to.equal(0.9);
    const md = ablationMarkdown(s, 'T');
    expect(md).to.match(/\| 1 \| step0 \| trick0 \| 82\.00 ± 2\.83 \| 2 \|/);
    expect(md).to.match(/\| 2 \| step1 \| trick1 \| 82\.50 ± 2\.12 \| 2 \| \+0\.50 ± 2\.50 \| within noise/);
    expect(md).to.match(/Teacher for distillation/);
  });

  it("the ladder's y range holds every error-bar cap (with 2 seeds mean ± std reaches past both dots)", () => {
    const spec = ladderSpec(
      't',
      [
        { step: 'a', seed: 0, top1: 0.8 },
        { step: 'a', seed: 1, top1: 0.9 },
        { step: 'b', seed: 0, top1: 0.85 },
      ],
      ['a', 'b'],
    ) as { layer: { encoding: { y: { scale: { domain: number[] } } } }[] };
    const [lo, hi] = spec.layer[0].encoding.y.scale.domain;
    const sd = Math.sqrt(((80 - 85) ** 2 + (90 - 85) ** 2) / 1);
    expect(lo).to.be.at.most(85 - sd);
    expect(hi).to.be.at.least(85 + sd);
  });

  it('writes ablation.json, ablation.md, the ladder and curve charts as PNG, and ablation.html', async function () {
    this.timeout(120000);
    const out = tmp();
    await summarize([rec(0, 0, 0.8), rec(0, 1, 0.82), rec(1, 0, 0.85), rec(1, 1, 0.86)], out, { title: 'test ladder' });
    const json = JSON.parse(readFileSync(join(out, 'ablation.json'), 'utf8'));
    expect(json.steps).to.have.length(2);
    expect(json.curves).to.have.length(4);
    expect(readFileSync(join(out, 'ablation.md'), 'utf8')).to.match(/# test ladder/);
    for (const name of ['ladder', 'curves']) {
      const svg = readFileSync(join(out, `${name}.svg`), 'utf8');
      expect(svg).to.match(/^<svg/);
      expect(svg).to.not.match(/href="http/);
      const meta = await sharp(join(out, `${name}.png`)).metadata();
      expect(meta.format).to.equal('png');
      expect(meta.width).to.be.greaterThan(300);
    }
    // The ladder chart shows the steps and the means it plotted.
    const ladder = readFileSync(join(out, 'ladder.svg'), 'utf8');
    expect(ladder).to.contain('1. step0').and.to.contain('2. step1').and.to.contain('85.50');
    // ablation.html: both charts inline, the delta table and every run linked to its report, nothing fetched
    const html = readFileSync(join(out, 'ablation.html'), 'utf8');
    expect(html.match(/<svg/g)).to.have.length(2);
    expect(html).to.match(
      /<td>2<\/td><td>step1<\/td><td><code>trick1<\/code><\/td><td>85\.50 ± 0\.71<\/td><td>2<\/td><td>\+4\.50 ± 1\.12<\/td>/,
    );
    expect(html).to.contain('Whole ladder: 81.00 → 85.50 (+4.50 points).');
    expect(html.match(/href="runs\/s\d-seed\d\/report\.html"/g)).to.have.length(4);
    expect(html).to.not.match(/<script|src="http|href="http/);
  });
});

describe('ablation plan', () => {
  it('plans one run per step x seed, in ladder order, with seeds from the base seed', async () => {
    const dir = tmp();
    const preset = writeTinyPreset(dir);
    const specs = await planAblation({ preset, seeds: 3, overrides: { seed: 5, epochs: 2 }, out: join(dir, 'abl') });
    expect(specs.map((s) => s.id)).to.deep.equal([
      's1-baseline-seed5',
      's1-baseline-seed6',
      's1-baseline-seed7',
      's2-cosine-seed5',
      's2-cosine-seed6',
      's2-cosine-seed7',
    ]);
    expect(specs.map((s) => s.ladderStep)).to.deep.equal([0, 0, 0, 1, 1, 1]);
    expect(specs[4].overrides).to.deep.equal({ seed: 6, epochs: 2 });
    expect(specs[3].trick).to.equal('schedule=cosine');
    expect(specs[0].out).to.equal(join(dir, 'abl', 'runs', 's1-baseline-seed5'));
    expect(new Set(specs.map(specHash)).size).to.equal(6);
  });

  it('adds a teacher run before a distillation step and points kd at it', async () => {
    const dir = tmp();
    const preset = writeTinyPreset(
      dir,
      "{ name: '+ kd', plugins: [['kd', { teacherModel: { name: 'small-cnn', options: { width: 8 } }, alpha: 0.5 }]] },",
    );
    const specs = await planAblation({ preset, seeds: 2, overrides: { plugins: [] }, out: join(dir, 'abl') });
    expect(specs.map((s) => s.id)).to.deep.equal([
      's1-baseline-seed0',
      's1-baseline-seed1',
      's2-cosine-seed0',
      's2-cosine-seed1',
      'teacher',
      's3-kd-seed0',
      's3-kd-seed1',
    ]);
    const teacher = specs[4];
    expect(teacher.role).to.equal('teacher');
    // the rung before kd (cosine here): the teacher learns on the inputs the student's batches will have
    expect(teacher.ladderStep).to.equal(1);
    expect(teacher.trick).to.equal('teacher small-cnn (rung 2 recipe)');
    expect(teacher.overrides.model).to.deep.equal({ name: 'small-cnn', options: { width: 8 } });
    expect(specs[5].dependsOn).to.deep.equal(['teacher']);
    expect(specs[5].overrides.plugins).to.deep.equal([['kd', { teacher: teacher.out }]]);
    expect(specs[2].overrides.plugins).to.deep.equal([]);
    expect(specs[5].trick).to.equal('kd(alpha=0.5)');
    // A given teacher replaces the teacher run.
    const given = await planAblation({ preset, seeds: 1, overrides: {}, out: join(dir, 'abl'), teacher: '/models/t' });
    expect(given.map((s) => s.id)).to.deep.equal(['s1-baseline-seed0', 's2-cosine-seed0', 's3-kd-seed0']);
    expect(given[2].overrides.plugins).to.deep.equal([['kd', { teacher: '/models/t' }]]);
    // kd on the first rung has no rung before it to train the teacher with
    const first = join(dir, 'kd-first.mjs');
    writeFileSync(
      first,
      "export default { name: 'kd-first', description: 'kd first', ladder: [{ name: 'kd', plugins: [['kd', { teacherModel: { name: 'small-cnn' } }]] }] };",
    );
    const err = await planAblation({ preset: first, seeds: 1, overrides: {}, out: join(dir, 'abl2') }).catch((e) => e);
    expect(err.message).to.match(/ladder step "kd": kd with a teacherModel cannot be the first rung/);
    expect((await planAblation({ preset: first, seeds: 1, overrides: {}, out: join(dir, 'abl2'), teacher: '/t' })).length).to.equal(1);
  });

  it("trains the teacher with the kd rung's teacherSettings (more images, more epochs), the students without them", async () => {
    const dir = tmp();
    const preset = join(dir, 'kd-more.mjs');
    writeFileSync(
      preset,
      `export default { name: 'kd-more', description: 'kd from a teacher on more data', settings: { epochs: 2, limit: { train: 64 } },
        ladder: [{ name: 'baseline' }, { name: '+ kd', plugins: [['kd', { teacherModel: { name: 'resnet20' } }]],
          teacherSettings: { epochs: 5, limit: { train: 60000 } } }] };`,
    );
    const specs = await planAblation({ preset, seeds: 1, overrides: { limit: { train: 100, val: 50 } }, out: join(dir, 'abl') });
    const teacher = specs.find((s) => s.role === 'teacher')!;
    expect(teacher.trick).to.equal('teacher resnet20 (rung 1 recipe, epochs 5, limit {"train":60000})');
    expect(teacher.overrides.epochs).to.equal(5);
    // over the user's --limit-train, key by key (--limit-val stays)
    expect(teacher.overrides.limit).to.deep.equal({ train: 60000, val: 50 });
    const student = specs.find((s) => s.stepName === '+ kd')!;
    expect(student.overrides.limit).to.deep.equal({ train: 100, val: 50 });
    expect(student.overrides.epochs).to.equal(undefined);
    const cfg = await resolveConfig({ ...teacher.overrides, preset }, { ladderStep: teacher.ladderStep });
    expect([cfg.config.epochs, cfg.config.limit.train, cfg.config.model.name]).to.deep.equal([5, 60000, 'resnet20']);
    // teacherSettings on a rung without a teacher to train: one message naming the rung
    const stray = join(dir, 'stray.mjs');
    writeFileSync(
      stray,
      "export default { name: 'stray', description: 'x', ladder: [{ name: 'baseline', teacherSettings: { epochs: 5 } }] };",
    );
    const err = await planAblation({ preset: stray, seeds: 1, overrides: {}, out: join(dir, 'abl3') }).catch((e) => e);
    expect(err).to.be.instanceOf(TricksError);
    expect(err.message).to.match(/ladder step "baseline": teacherSettings, but the step adds no kd with a teacherModel/);
  });

  it('refuses a preset without a ladder and a bad seed count, with clear errors', async () => {
    const dir = tmp();
    const file = join(dir, 'flat.mjs');
    writeFileSync(file, "export default { name: 'flat', description: 'no ladder', settings: {} };");
    const err = await planAblation({ preset: file, seeds: 1, overrides: {}, out: dir }).catch((e) => e);
    expect(err).to.be.instanceOf(TricksError);
    expect(err.message).to.match(/preset flat has no ablation ladder/);
    const err2 = await planAblation({ preset: writeTinyPreset(dir), seeds: 0, overrides: {}, out: dir }).catch((e) => e);
    expect(err2.message).to.match(/--seeds 0/);
  });

  it('describes what a step adds', () => {
    expect(describeStep({ name: 'b' }, 0)).to.equal('baseline');
    expect(
      describeStep(
        {
          name: 'x',
          plugins: ['mixup', ['label-smoothing', { epsilon: 0.1 }]],
          settings: { schedule: { name: 'cosine', warmupEpochs: 5 }, batchSize: 1024 },
        },
        3,
      ),
    ).to.equal('mixup, label-smoothing(epsilon=0.1), schedule=cosine(warmupEpochs=5), batchSize=1024');
    expect(describeStep({ name: 'z', settings: { model: { name: 'resnet50-d', options: { zeroGamma: true } } } }, 1)).to.equal(
      'model=resnet50-d(zeroGamma=true)',
    );
    expect(describeStep({ name: 'c', settings: { schedule: { name: 'cosine' } } }, 1)).to.equal('schedule=cosine');
  });
});

describe('ladder resolution', () => {
  it('a rung that switches the schedule replaces it instead of merging options (multistep -> cosine)', async () => {
    const dir = tmp();
    const preset = writeTinyPreset(dir);
    const r0 = await resolveConfig({ preset }, { ladderStep: 0 });
    const r1 = await resolveConfig({ preset }, { ladderStep: 1 });
    expect(r0.config.schedule).to.deep.equal({ name: 'multistep', milestones: [1], gamma: 0.1 });
    expect(r1.config.schedule).to.deep.equal({ name: 'cosine' });
    // and so does a flag: --schedule cosine over a preset's multistep
    const r2 = await resolveConfig({ preset, schedule: { name: 'cosine' } }, { ladderStep: 0 });
    expect(r2.config.schedule).to.deep.equal({ name: 'cosine' });
    // --optimizer adamw over sgd keeps lr and weight decay, drops momentum
    const r3 = await resolveConfig({ preset, optimizer: { name: 'adamw' } }, { ladderStep: 0 });
    expect(r3.config.optimizer).to.deep.include({ name: 'adamw', lr: 0.05 });
    expect(r3.config.optimizer).to.not.have.property('momentum');
  });
});

describe('runOne', function () {
  this.timeout(300000);
  before(testBackend);

  it('trains, writes result.json and report.html, and returns the saved result on a second call', async () => {
    const dir = tmp();
    const preset = writeTinyPreset(dir);
    const [spec] = await planAblation({ preset, seeds: 1, overrides: {}, out: join(dir, 'abl') });
    const logger = new MemoryLogger();
    const r = await runOne(spec, { logger });
    expect(r.top1).to.be.within(0, 1);
    expect(r.epochs).to.have.length(1);
    expect(r.resumedFrom).to.equal(undefined);
    expect(r.plugins).to.deep.equal([]);
    expect(existsSync(join(spec.out, 'report.html'))).to.equal(true);
    expect(existsSync(join(spec.out, 'checkpoint', 'state.json'))).to.equal(true);
    const mtime = statSync(join(spec.out, 'result.json')).mtimeMs;
    const again = await runOne(spec, { logger });
    expect(again).to.deep.equal(r);
    expect(statSync(join(spec.out, 'result.json')).mtimeMs).to.equal(mtime);
    // A result of another configuration in the same folder is an error, not a silent reuse.
    const err = await runOne({ ...spec, overrides: { epochs: 3 } }).catch((e) => e);
    expect(err).to.be.instanceOf(TricksError);
    expect(err.message).to.match(/different configuration/);
  });

  it("reports the run's own error when freeing the failed run fails too (a damaged wasm heap)", async () => {
    const dir = tmp();
    const preset = writeTinyPreset(dir);
    const [spec] = await planAblation({ preset, seeds: 1, overrides: {}, out: join(dir, 'abl') });
    const faulty = definePlugin({
      name: 'test:fail-then-fail-to-free',
      description: 'the run fails at its first epoch end; disposing its optimizer fails as well',
      apply(api) {
        api.hooks.epoch.tapPromise({ name: 'test:fail-then-fail-to-free' }, async (ctx) => {
          ctx.optimizer.dispose = () => {
            throw new Error('memory access out of bounds');
          };
          throw new Error('the run broke');
        });
      },
    });
    const logger = new MemoryLogger();
    const err = await runOne(spec, { logger, builtins: [faulty] }).catch((e) => e);
    expect(err.message).to.equal('the run broke');
    expect(logger.lines.join('\n')).to.match(/freeing run s1-baseline-seed0 after its error failed too: memory access out of bounds/);
  });

  it('resumes an interrupted run from its checkpoint', async () => {
    const dir = tmp();
    const preset = writeTinyPreset(dir);
    const [spec] = await planAblation({ preset, seeds: 1, overrides: { epochs: 2 }, out: join(dir, 'abl') });
    // Interrupt: the same run with a 1-epoch budget leaves a checkpoint after epoch 1 (result.json removed).
    await runOne({ ...spec, overrides: { epochs: 1 } }, { logger: new MemoryLogger() });
    const { rmSync } = await import('node:fs');
    rmSync(join(spec.out, 'result.json'));
    const logger = new MemoryLogger();
    const r = await runOne(spec, { logger });
    expect(r.resumedFrom).to.equal(1);
    expect(r.epochs.map((e) => e.epoch)).to.deep.equal([1, 2]);
    expect(logger.lines.join('\n')).to.match(/resumed from .*epoch 2/);
  });
});
