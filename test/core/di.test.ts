import { expect } from 'chai';
import { cpSync, rmSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { TricksError, MemoryLogger, CORE_VERSION, checkCoreRange, satisfies, METRIC_KEYS, SGD } from '@tricks/core';
import { configFromFlags } from '@tricks/cli';
import { testBackend, tiny, tmp as makeTmp, createTestTrainer } from './helpers.js';

/** Scratch directories of this file, removed after its tests (symlinks inside are removed, not followed). */
const made: string[] = [];
const tmp = (prefix?: string) => {
  const d = makeTmp(prefix);
  made.push(d);
  return d;
};
after(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

const here = dirname(fileURLToPath(import.meta.url));
const coreDir = resolve(here, '..', '..', '..', 'core', 'trainer');
const fixtures = resolve(here, '..', '..', 'core', 'di-fixtures');
const quiet = () => ({ logger: new MemoryLogger() });

/** The directory of an installed package, found from core (exports may hide its package.json). */
function packageDir(name: string): string {
  let dir = dirname(createRequire(join(coreDir, 'package.json')).resolve(name));
  while (!existsSync(join(dir, 'package.json')) || JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== name)
    dir = dirname(dir);
  return dir;
}

/**
 * A user's project in a temp dir: @tricks/core and the peers the fixture packages import are linked
 * in its node_modules (as npm would install them), and the given third-party packages copied there.
 */
function project(packages: string[], configFile = false): string {
  const cwd = tmp('tricks-di-');
  writeFileSync(join(cwd, 'package.json'), '{"name":"user-project","private":true,"type":"module"}');
  const nm = join(cwd, 'node_modules');
  mkdirSync(join(nm, '@tricks'), { recursive: true });
  mkdirSync(join(nm, '@tensorflow'), { recursive: true });
  symlinkSync(coreDir, join(nm, '@tricks', 'core'), 'dir');
  symlinkSync(packageDir('inversify'), join(nm, 'inversify'), 'dir');
  symlinkSync(packageDir('@tensorflow/tfjs-core'), join(nm, '@tensorflow', 'tfjs-core'), 'dir');
  for (const p of packages) cpSync(join(fixtures, p), join(nm, p), { recursive: true });
  if (configFile) cpSync(join(fixtures, 'tricks.config.mjs'), join(cwd, 'tricks.config.mjs'));
  return cwd;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('DI extension', function () {
  this.timeout(120000);
  before(testBackend);

  it('a third-party package replaces the optimizer, adds a dataset format and a metrics sink', async () => {
    const cwd = project(['tricks-plugin-acme']);
    const acme = await import(pathToFileURL(join(cwd, 'node_modules', 'tricks-plugin-acme', 'index.js')).href);
    const lr = 1e-3;
    const cfg = tiny({ data: 'stripes', plugins: ['acme'], optimizer: { name: 'lion', lr }, limit: { train: 256, val: 64, steps: 4 } });
    const trainer = await createTestTrainer(cfg, { ...quiet(), cwd });
    expect(trainer.config.plugins[0].source).to.equal('tricks-plugin-acme');

    let before: Float32Array[] = [];
    const firstDelta: number[] = [];
    trainer.hooks.setup.tapPromise(
      'test',
      async (ctx) => void (before = ctx.model.trainableWeights.map((w) => w.read().dataSync() as Float32Array)),
    );
    trainer.hooks.step.tap('test', (ctx) => {
      if (ctx.step !== 0) return;
      ctx.model.trainableWeights.forEach((w, i) => {
        const now = w.read().dataSync();
        for (let j = 0; j < now.length; j++) firstDelta.push(Math.abs(now[j] - before[i][j]));
      });
    });
    const result = await trainer.run();

    // The dataset format: 16x16 stripes, 2 classes.
    expect(trainer.ctx.train.name).to.equal('stripes');
    expect(trainer.ctx.inputShape).to.deep.equal([16, 16, 1]);
    expect(trainer.ctx.numClasses).to.equal(2);
    // The optimizer: Lion's first step (zero momentum) moves every weight by exactly lr * sign(grad).
    expect(trainer.ctx.optimizer).to.be.instanceOf(acme.Lion);
    expect(firstDelta.length).to.be.greaterThan(100);
    const off = firstDelta.filter((d) => Math.abs(d - lr) > 1e-6 && d > 1e-6);
    expect(off, `deltas neither 0 nor lr: ${off.slice(0, 5)}`).to.have.length(0);
    expect(firstDelta.filter((d) => d > 1e-6).length / firstDelta.length).to.be.greaterThan(0.5); // weights with a zero gradient stay
    // The sink: metrics.csv beside metrics.jsonl, the same numbers.
    const csv = readFileSync(join(cfg.out!, 'metrics.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).to.equal(METRIC_KEYS.join(','));
    expect(csv).to.have.length(2);
    const jsonl = JSON.parse(readFileSync(join(cfg.out!, 'metrics.jsonl'), 'utf8').trim());
    expect(csv[1].split(',').map(Number)).to.deep.equal(METRIC_KEYS.map((k) => jsonl[k]));
    expect(result.epochs[0].val_top1).to.be.within(0, 1);
  });

  it('the options of a package turn its bindings on and off (csv: false binds no CSV sink)', async () => {
    const cwd = project(['tricks-plugin-acme']);
    const cfg = tiny({ data: 'stripes', plugins: [['acme', { csv: false }]], limit: { train: 64, val: 32, steps: 1 } });
    await (await createTestTrainer(cfg, { ...quiet(), cwd })).run();
    expect(existsSync(join(cfg.out!, 'metrics.csv'))).to.equal(false);
    expect(existsSync(join(cfg.out!, 'metrics.jsonl'))).to.equal(true);
  });

  it("a tricks.config.mjs rebinds services from its `modules`, over a plugin's rebind", async () => {
    const cwd = project(['tricks-plugin-acme'], true);
    // The CLI's path: the config file, then flags on top.
    const user = await configFromFlags({
      plugin: [],
      config: join(cwd, 'tricks.config.mjs'),
      out: tmp(),
      steps: 2,
      limitTrain: 128,
      limitVal: 64,
      batchSize: 32,
      backend: process.env.TRICKS_TEST_BACKEND ?? 'wasm',
      checkpoint: false,
    });
    expect(user.modules).to.have.length(1);
    const trainer = await createTestTrainer(user, { ...quiet(), cwd });
    await trainer.run();
    const config = await import(pathToFileURL(join(cwd, 'tricks.config.mjs')).href);
    // The user's optimizer registry won over acme's (both rebind it; the config loads last, no conflict).
    expect(config.created).to.deep.equal(['lion']);
    expect(trainer.ctx.optimizer).to.be.instanceOf(SGD);
    expect((trainer.ctx.optimizer as SGD).nesterov).to.equal(true);
    // The user's logger got the run's messages; acme's dataset format still came in.
    expect(
      config.log.some((l: string) => /^data: stripes \(synthetic, 16x16\): 128 train, 64 val/.test(l)),
      config.log.join('\n'),
    ).to.equal(true);
  });

  it('two packages replacing the same service fail early with an error naming both', async () => {
    const cwd = project(['tricks-plugin-acme', 'tricks-plugin-rival']);
    const err = await rejection(createTestTrainer(tiny({ plugins: ['acme', 'rival'] }), { ...quiet(), cwd }));
    expect(err).to.be.instanceOf(TricksError);
    expect(err.message).to.match(
      /plugin rival \(tricks-plugin-rival\) and plugin acme \(tricks-plugin-acme\) both replace the service tricks\.Optimizers/,
    );
    expect(err.message).to.match(/use only one of them, or rebind the service yourself in your config file/);
  });

  it('a second `bind` of a single-binding service is an error naming the package, not "ambiguous bindings" later', async () => {
    const cwd = project(['tricks-plugin-greedy']);
    const err = await rejection(createTestTrainer(tiny({ plugins: ['greedy'] }), { ...quiet(), cwd }));
    expect(err).to.be.instanceOf(TricksError);
    expect(err.message).to.match(
      /plugin greedy \(tricks-plugin-greedy\) binds the service tricks\.Sampler a second time \(it is bound by @tricks\/core\)/,
    );
    expect(err.message).to.match(/rebind\(TOKENS\.Sampler\)/);
  });

  it('leaks no tensor through a replaced optimizer and an added dataset (steady count over steps)', async () => {
    const cwd = project(['tricks-plugin-acme']);
    const trainer = await createTestTrainer(
      tiny({
        data: 'stripes',
        plugins: [['acme', { csv: false }]],
        optimizer: { name: 'lion', lr: 1e-3 },
        limit: { train: 256, val: 32, steps: 6 },
      }),
      { ...quiet(), cwd },
    );
    const counts: number[] = [];
    trainer.hooks.step.tap('count', () => void counts.push(tf.memory().numTensors));
    await trainer.run();
    expect(new Set(counts.slice(1)).size, `tensors after each step: ${counts}`).to.equal(1);
  });
});

describe('core compatibility', function () {
  this.timeout(60000);

  it('takes the package.json peerDependency as the range when the definition has none, and fails early with both versions', async () => {
    const cwd = project(['tricks-plugin-future']);
    const err = await rejection(createTestTrainer(tiny({ plugins: ['future'] }), { ...quiet(), cwd }));
    expect(err).to.be.instanceOf(TricksError);
    const v = CORE_VERSION.replace(/\./g, '\\.');
    expect(err.message).to.match(
      new RegExp(`plugin future \\(tricks-plugin-future\\) requires @tricks/core \\^9\\.0\\.0, but this is @tricks/core ${v}`),
    );
    expect(err.message).to.match(/range from peerDependencies of .*tricks-plugin-future\/package\.json/);
  });

  it("the definition's core range wins over the peerDependency", async () => {
    const cwd = project(['tricks-plugin-pinned']);
    const trainer = await createTestTrainer(tiny({ plugins: ['pinned'] }), { ...quiet(), cwd });
    expect(trainer.config.plugins.map((p) => p.source)).to.deep.equal(['tricks-plugin-pinned']);
  });

  it('an unreadable range is a clear error, not a crash', () => {
    expect(() =>
      checkCoreRange({ name: 'x', description: '', apply() {} }, 'tricks-plugin-x', {
        file: '/p/package.json',
        peerDependencies: { '@tricks/core': 'latest' },
      }),
    ).to.throw(
      TricksError,
      /declares the @tricks\/core range "latest" in peerDependencies of \/p\/package\.json, which is not a valid range/,
    );
  });

  it('reads npm ranges as npm does (hand-checked cases)', () => {
    const cases: [string, string, boolean][] = [
      ['0.1.0', '^0.1.0', true],
      ['0.1.9', '^0.1.0', true],
      ['0.2.0', '^0.1.0', false],
      ['1.2.3', '^1.0.0', true],
      ['2.0.0', '^1.0.0', false],
      ['0.0.3', '^0.0.3', true],
      ['0.0.4', '^0.0.3', false],
      ['0.1.5', '~0.1.2', true],
      ['0.2.0', '~0.1.2', false],
      ['0.1.0', '0.x', true],
      ['1.0.0', '0.x', false],
      ['0.1.7', '0.1', true],
      ['0.2.0', '0.1', false],
      ['0.1.0', '*', true],
      ['0.1.0', '>=0.1.0 <0.3.0', true],
      ['0.3.0', '>=0.1.0 <0.3.0', false],
      ['0.1.0', '>= 0.1.0', true],
      ['0.5.0', '0.1.0 - 0.5', true],
      ['0.6.0', '0.1.0 - 0.5', false],
      ['0.1.0', '^9.0.0 || ^0.1.0', true],
      ['0.1.0', '>0.1', false],
      ['0.2.0', '>0.1', true],
      ['0.1.9', '<=0.1', true],
      ['0.2.0', '<=0.1', false],
      ['0.1.0', '=0.1.0', true],
      ['0.1.0', 'v0.1.0', true],
    ];
    for (const [version, range, want] of cases) expect(satisfies(version, range), `${version} in ${range}`).to.equal(want);
  });

  it('agrees with node-semver over a grid of ranges and versions', function () {
    let semver: { satisfies(v: string, r: string): boolean };
    try {
      semver = createRequire(join(coreDir, 'package.json'))('semver');
    } catch {
      console.log('    (skipped: the semver package is not installed here; the hand-checked cases above still ran)');
      this.skip();
    }
    const versions = ['0.0.1', '0.0.3', '0.1.0', '0.1.4', '0.2.0', '0.9.9', '1.0.0', '1.2.3', '1.3.0', '2.0.0', '3.1.4'];
    const ranges = [
      '^0.0.3',
      '^0.1',
      '^0',
      '^1.2',
      '^1.2.3',
      '~0.1',
      '~1',
      '~1.2.3',
      '0.1.x',
      '1.x',
      '1',
      '>0.1.4',
      '>=1.2',
      '<1.3',
      '<=1.2',
      '<=1.2.3',
      '>1',
      '1.0.0 - 1.3',
      '0.1 - 2',
      '>=0.1.0 <1.0.0 || >=2',
      '*',
      '',
      'x',
      '>=0.0.3 <0.2',
    ];
    for (const r of ranges) for (const v of versions) expect(satisfies(v, r), `${v} in "${r}"`).to.equal(semver.satisfies(v, r));
  });
});
