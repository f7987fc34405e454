import { expect } from 'chai';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { MemoryLogger, TricksError, type UserConfig } from '@tricks/core';
import { checkSweep, lrFind, lrFindSummary, suggest, SweepRecorder, sweepLr, type Suggestions } from '../src/lr-find.js';
import { testBackend, tmp } from './helpers.js';

// dist/test -> the package's test/fixtures (the generator and its output are not compiled)
const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures');

interface Case {
  name: string;
  startLr: number;
  endLr: number;
  numIt: number;
  stopDiv: boolean;
  losses: (number | null)[];
  expected: { steps: number; lrs: number[]; smoothed: (number | null)[]; suggestions: Suggestions | null };
}

const close = (a: number, b: number, rel: number, what: string) =>
  expect(Math.abs(a - b), `${what}: ${a} vs ${b}`).to.be.at.most(rel * Math.max(Math.abs(a), Math.abs(b), 1e-30));

describe('lr-find: fastai reference values (test/fixtures/lr_find_fastai.py)', () => {
  const { cases } = JSON.parse(readFileSync(join(fixtures, 'lr-find-fastai.json'), 'utf8')) as { cases: Case[] };

  it('has synthetic and real curves', () => {
    expect(cases.map((c) => c.name)).to.include.members(['classic', 'two-valleys', 'nan-at-70', 'short-falling', 'real-digits-sgd']);
    expect(cases.filter((c) => c.name.startsWith('real-')).length).to.equal(3);
  });

  for (const c of JSON.parse(readFileSync(join(fixtures, 'lr-find-fastai.json'), 'utf8')).cases as Case[]) {
    it(`${c.name}: the schedule, the smoothed loss, where the sweep stops and the suggestions`, () => {
      const sweep = checkSweep(c);
      const rec = new SweepRecorder(sweep);
      for (const [i, l] of c.losses.entries()) {
        const stop = rec.add(sweepLr(sweep, i), l ?? NaN);
        if (stop || rec.done) break;
      }
      expect(rec.lrs.length, 'steps').to.equal(c.expected.steps);
      rec.lrs.forEach((lr, i) => close(lr, c.expected.lrs[i]!, 1e-12, `lr ${i}`));
      rec.smoothed.forEach((s, i) => {
        const e = c.expected.smoothed[i];
        if (e === null) expect(s, `smoothed ${i}`).to.be.NaN;
        else close(s, e!, 2e-6, `smoothed ${i}`); // fastai's are float32
      });
      const got = suggest(rec.lrs, rec.smoothed, sweep.numIt);
      if (!c.expected.suggestions) return expect(got).to.equal(undefined);
      for (const k of ['valley', 'steep', 'minimum'] as const) {
        const e = c.expected.suggestions[k];
        close(got![k].lr, e.lr, 1e-6, `${k} lr`);
        close(got![k].point.lr, e.point.lr, 1e-6, `${k} point lr`);
        close(got![k].point.loss, e.point.loss, 1e-5, `${k} point loss`);
      }
    });
  }

  it('gives no suggestion when fewer than 2 points are left (the first num_it // 10 and the last 5 are dropped)', () => {
    const lrs = Array.from({ length: 16 }, (_, i) => sweepLr({ startLr: 1e-5, endLr: 1, numIt: 100 }, i));
    expect(
      suggest(
        lrs,
        lrs.map((_, i) => 2 - i / 20),
        100,
      ),
    ).to.equal(undefined); // 16 - 10 - 5 = 1
    expect(suggest(lrs.slice(0, 7), [2, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4], 7)).to.not.equal(undefined);
  });
});

describe('lr-find: bad input', () => {
  const bad = (o: object, re: RegExp) => {
    expect(() => checkSweep(o)).to.throw(TricksError, re);
  };
  it('names the option that is wrong', () => {
    bad({ startLr: 1, endLr: 0.1 }, /startLr \(--start-lr\) 1 is not below endLr \(--end-lr\) 0.1/);
    bad({ startLr: 0.1, endLr: 0.1 }, /0.1 is not below endLr \(--end-lr\) 0.1/);
    bad({ startLr: 0 }, /startLr \(--start-lr\) is 0/);
    bad({ endLr: Number.NaN }, /endLr \(--end-lr\) is NaN/);
    bad({ numIt: 1 }, /numIt \(--num-it\) is 1[\s\S]*integer >= 6/);
    bad({ numIt: 12.5 }, /numIt \(--num-it\) is 12.5/);
    expect(checkSweep({})).to.deep.equal({ startLr: 1e-7, endLr: 10, numIt: 100, stopDiv: true });
  });

  it("refuses a file, a run's folder, a folder inside one and a non-empty folder, and leaves them as they were", async () => {
    const dir = tmp('tricks-lrfind-');
    const run = join(dir, 'run');
    mkdirSync(join(run, 'checkpoint'), { recursive: true });
    writeFileSync(join(run, 'run.json'), '{}');
    writeFileSync(join(dir, 'a-file'), 'x');
    mkdirSync(join(dir, 'notes'));
    writeFileSync(join(dir, 'notes', 'todo.txt'), 'x');
    const user = { data: 'digits', backend: 'cpu' };
    for (const [out, re] of [
      [join(dir, 'a-file'), /is a file, not a folder/],
      [run, /is a run's folder \(it holds checkpoint, run.json\)/],
      [join(run, 'lr'), /is inside the run folder/],
      [join(dir, 'notes'), /is not empty \(it holds todo.txt\)/],
    ] as const) {
      const e = await lrFind(user, { out }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e, out).to.be.instanceOf(TricksError);
      expect((e as Error).message)
        .to.match(re)
        .and.to.match(/give a new folder/);
    }
    expect(readdirSync(run).sort()).to.deep.equal(['checkpoint', 'run.json']);
    expect(readFileSync(join(dir, 'a-file'), 'utf8')).to.equal('x');
    expect(readdirSync(dir).sort()).to.deep.equal(['a-file', 'notes', 'run']);
  });
});

describe('lr-find: a real sweep on digits', function () {
  this.timeout(300000);
  // the recipe has a schedule of its own (onecycle) and a few epochs: the sweep replaces both
  const recipe = (): UserConfig => ({
    data: 'digits',
    model: { name: 'small-cnn', options: { width: 8 } },
    batchSize: 32,
    limit: { train: 512 },
    epochs: 3,
    schedule: { name: 'onecycle' },
    backend: process.env.TRICKS_TEST_BACKEND ?? 'wasm',
  });
  const tmpRuns = () => readdirSync(tmpdir()).filter((f) => f.startsWith('tricks-lr-find-'));
  before(() => testBackend());

  it('stops on divergence, writes only lr-find.json and lr-find.png, and suggests an lr where the loss fell', async () => {
    const parent = tmp('tricks-lrfind-');
    const out = join(parent, 'sweep');
    const before = tmpRuns();
    const logger = new MemoryLogger();
    const r = await lrFind(recipe(), { out, startLr: 1e-4, endLr: 10, numIt: 40, logger });
    // the sweep's schedule, not the recipe's: step i at 1e-4 * 1e5^(i/40)
    r.lrs.forEach((lr, i) => close(lr, sweepLr(r.sweep, i), 1e-12, `lr ${i}`));
    // SGD (momentum 0.9) does not survive lr 10 on this model: the smoothed loss passes 4x its best first
    expect(r.stopped).to.match(/smoothed loss .* > 4x the best/);
    expect(r.lrs.length).to.be.below(40).and.above(20);
    expect(r.smoothed.at(-1)).to.be.above(4 * Math.min(...r.smoothed));
    // nothing but the two files, and no temp run left behind
    expect(readdirSync(out).sort()).to.deep.equal(['lr-find.json', 'lr-find.png']);
    expect(readdirSync(parent)).to.deep.equal(['sweep']);
    expect(tmpRuns()).to.deep.equal(before);
    const json = JSON.parse(readFileSync(r.json, 'utf8'));
    expect(json.lrs).to.deep.equal(r.lrs);
    expect(json.smoothed).to.have.length(r.lrs.length);
    expect(json.losses).to.have.length(r.lrs.length);
    expect(json.reference).to.match(/fastai/);
    expect(Object.keys(json.suggestions)).to.deep.equal(['valley', 'steep', 'minimum']);
    const meta = await sharp(r.png).metadata();
    expect(meta.format).to.equal('png');
    expect(meta.width).to.be.above(600);
    // sensible: the valley lies inside the sweep, where the smoothed loss is below the untrained model's
    const { valley } = r.suggestions!;
    expect(valley.lr).to.be.above(r.lrs[0]!).and.below(r.lrs.at(-1)!);
    expect(valley.point.loss).to.be.below(r.smoothed[0]!);
    expect(r.pass).to.equal(`--lr ${valley.lr.toExponential(1)}`);
    const text = lrFindSummary(r);
    expect(text).to.include(`Pass ${r.pass} to tricks train.`).and.include(`plot: ${r.png}`);
    expect(logger.lines.join('\n')).to.not.match(/^epoch \d+\/\d+:/m);
  });

  it('runs num_it steps when the loss does not diverge, and replaces a previous sweep in its folder', async () => {
    const out = join(tmp('tricks-lrfind-'), 'sweep');
    const first = await lrFind(recipe(), { out, startLr: 1e-5, endLr: 1e-2, numIt: 12, logger: new MemoryLogger() });
    expect(first.lrs.length).to.equal(12);
    expect(first.stopped).to.equal(undefined);
    close(first.lrs.at(-1)!, 1e-5 * 1e3 ** (11 / 12), 1e-12, 'last lr'); // fastai's: a step short of end_lr
    expect(first.suggestions).to.not.equal(undefined);
    const second = await lrFind(recipe(), { out, startLr: 1e-5, endLr: 1e-2, numIt: 8, logger: new MemoryLogger() });
    expect(readdirSync(out).sort()).to.deep.equal(['lr-find.json', 'lr-find.png']);
    expect(JSON.parse(readFileSync(second.json, 'utf8')).lrs).to.have.length(8);
    expect(existsSync(`${out}.old`)).to.equal(false);
  });
});
