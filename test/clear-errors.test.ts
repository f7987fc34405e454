/**
 * One clear message for every fault, through the real CLI: nonsense numbers (flags, a config file, a preset),
 * a full disk (a 5 MB tmpfs), a read-only mount, a folder without write permission, every checkpoint file
 * truncated, garbled or missing, and --resume with flags (what it applies, what it refuses). Each checks the
 * exit code, the message and that no stack trace is printed.
 */
import { expect } from 'chai';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { root, tmp, tricks } from './cli-helpers.js';

/** A small real run: 256 digits, batches of 64, 4 steps an epoch. */
const SMALL = ['--data', 'digits', '--limit-train', '256', '--limit-val', '64', '--backend', 'wasm'];

/** The CLI with spawn options (another user, a cwd). */
function run(args: string[], opts: SpawnSyncOptions = {}) {
  const r = spawnSync(process.execPath, [tricks, ...args], { cwd: root, encoding: 'utf8', timeout: 300000, ...opts });
  return { code: r.status, out: String(r.stdout), err: String(r.stderr) };
}

/** Non-zero exit, the message, no stack trace, no "internal error". */
function expectClean(r: { code: number | null; err: string }, re: RegExp): void {
  expect(r.code, r.err).to.equal(1);
  expect(r.err).to.match(re);
  expect(r.err).to.not.match(/^\s+at .+:\d+:\d+/m);
  expect(r.err).to.not.match(/internal error/);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function mount(args: string[]): string | undefined {
  const r = spawnSync('mount', args, { encoding: 'utf8' });
  return r.status === 0 ? undefined : (r.stderr || r.error?.message || `mount exited ${r.status}`).trim();
}

describe('clear errors: nonsense numbers', function () {
  this.timeout(300000);

  it('rejects each nonsense number flag by its name, before any work', () => {
    const cases: [string[], RegExp][] = [
      [['--epochs', '0'], /option --epochs: "0" is not an integer >= 1/],
      [['--epochs', '-1'], /option --epochs: "-1" is not an integer >= 1/],
      [['--epochs', '1.5'], /option --epochs: "1.5" is not an integer >= 1/],
      [['--batch-size', '0'], /option --batch-size: "0" is not an integer >= 1/],
      [['--batch-size', '-5'], /option --batch-size: "-5" is not an integer >= 1/],
      [['--steps', '0'], /option --steps: "0" is not an integer >= 1/],
      [['--limit-train', '0'], /option --limit-train: "0" is not an integer >= 1/],
      [['--limit-train', '-5'], /option --limit-train: "-5" is not an integer >= 1/],
      [['--limit-val', '0'], /option --limit-val: "0" is not an integer >= 1/],
      [['--grad-accum', '0'], /option --grad-accum: "0" is not an integer >= 1/],
      [['--lr', '0'], /option --lr: "0" is not a number > 0/],
      [['--lr', '-1'], /option --lr: "-1" is not a number > 0/],
      [['--val-split', '1'], /option --val-split: "1" is not a number > 0 and < 1/],
      [['--seed', 'x'], /option --seed: "x" is not an integer/],
      [['--out', ''], /option --out: "" is not a folder/],
    ];
    const cwd = tmp();
    for (const [flags, re] of cases) {
      expectClean(run(['train', '--data', 'digits', ...flags], { cwd }), re);
      expect(readdirSync(cwd), `${flags.join(' ')} wrote nothing`).to.deep.equal([]);
    }
    expectClean(run(['eval', '--model', 'x', '--data', 'digits', '--batch-size', '0']), /option --batch-size: "0" is not an integer >= 1/);
    expectClean(
      run(['worker', '--queue', 'redis://127.0.0.1:1', '--concurrency', '0']),
      /option --concurrency: "0" is not an integer >= 1/,
    );
  });

  it('rejects the same numbers in a config file and in a preset, naming the field', () => {
    const cases: [object, RegExp][] = [
      [{ epochs: 0 }, /option "epochs" must be >= 1/],
      [{ batchSize: -5 }, /option "batchSize" must be >= 1/],
      [{ limit: { train: 0 } }, /option "limit.train" must be >= 1/],
      [{ limit: { steps: 0 } }, /option "limit.steps" must be >= 1/],
      [{ optimizer: { lr: 0 } }, /option "optimizer.lr" must be > 0/],
      [{ dataOptions: { valSplit: 1 } }, /option "dataOptions.valSplit" must be < 1/],
      [{ out: '' }, /option "out" must NOT have fewer than 1 characters/],
    ];
    for (const [config, re] of cases) {
      const cwd = tmp();
      const file = join(cwd, 'tricks.config.json');
      writeFileSync(file, JSON.stringify(config));
      const r = run(['train'], { cwd });
      expectClean(r, re);
      expect(r.err).to.include(`config file ${file}`);
      expect(readdirSync(cwd)).to.deep.equal(['tricks.config.json']);
    }
    // A preset's settings meet the same rule when the settings are merged.
    const cwd = tmp();
    writeFileSync(join(cwd, 'zero.mjs'), "export default { name: 'zero', description: 'epochs 0', settings: { epochs: 0 } };\n");
    expectClean(
      run(['train', '--preset', './zero.mjs'], { cwd }),
      /the settings \(presets, config file and flags merged\): option "epochs" must be >= 1/,
    );
  });
});

describe('clear errors: full, read-only and forbidden disks', function () {
  this.timeout(300000);
  const mounts: string[] = [];
  after(() => {
    for (const m of mounts.reverse()) spawnSync('umount', [m]);
  });

  it('a full disk (ENOSPC on a 5 MB tmpfs): names the checkpoint, the space it needs and the space free; the last checkpoint stays and resumes', function () {
    const dir = tmp();
    const why = mount(['-t', 'tmpfs', '-o', 'size=5m', 'tmpfs', dir]);
    if (why) {
      console.log(`    (skipped: cannot mount a tmpfs here, ${why}; it needs root)`);
      this.skip();
    }
    mounts.push(dir);
    // epoch 1's checkpoint (3.4 MB: weights and momentum) fits; epoch 2's new one does not fit beside it.
    const out = join(dir, 'run');
    const r = run(['train', ...SMALL, '--epochs', '2', '--out', out]);
    expectClean(
      r,
      new RegExp(
        `the disk is full \\(ENOSPC\\): could not write ${escape(out)}/checkpoint, which needs at least [\\d.]+ MB; [\\d.]+ (MB|kB) free`,
      ),
    );
    expect(r.err).to.match(/free space on that disk, or write somewhere else \(another --out\)/);
    const state = JSON.parse(readFileSync(join(out, 'checkpoint', 'state.json'), 'utf8')) as { epoch: number };
    expect(state.epoch).to.equal(1);
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).to.deep.equal([]);
    const copy = join(tmp(), 'run');
    cpSync(out, copy, { recursive: true });
    const resumed = run(['train', '--resume', copy]);
    expect(resumed.code, resumed.err).to.equal(0);
    expect(JSON.parse(resumed.out.trim().split('\n').at(-1)!).epochs).to.equal(2);
  });

  it('a read-only mount (EROFS): names the folder and says to write elsewhere, before training', function () {
    const src = tmp();
    const dir = tmp();
    const why = mount(['--bind', src, dir]) ?? (mounts.push(dir), mount(['-o', 'remount,ro,bind', dir]));
    if (why) {
      console.log(`    (skipped: cannot make a read-only bind mount here, ${why}; it needs root)`);
      this.skip();
    }
    for (const out of [dir, join(dir, 'run', 'deeper')]) {
      const r = run(['train', ...SMALL, '--out', out]);
      expectClean(
        r,
        new RegExp(`error: ${escape(dir)} is on a read-only file system\\n  write to a folder on a writable disk \\(another --out\\)`),
      );
      expect(r.err).to.not.match(/^epoch/m);
    }
  });

  it('a folder without write permission (EACCES): names it, before training', function () {
    const dir = tmp();
    chmodSync(dir, 0o755);
    const out = join(dir, 'locked');
    mkdirSync(out, { mode: 0o555 });
    // root may write anywhere: run the CLI as nobody then, as a user would be
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534, env: { ...process.env, HOME: dir } } : {};
    if (process.getuid?.() === 0) {
      // nobody must be able to read the checkout (a clone under a 0700 mktemp folder is not readable)
      const probe = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(tricks)})`], asUser);
      if (probe.status !== 0) {
        console.log(`    (skipped: user nobody cannot read ${root}; clone into a folder others may read to run this)`);
        this.skip();
      }
    }
    const r = run(['train', ...SMALL, '--out', join(out, 'run')], { ...asUser, cwd: dir });
    expectClean(r, new RegExp(`permission denied: ${escape(out)} \\(access\\)\\n  write to a folder you may write to`));
    expect(readdirSync(out)).to.deep.equal([]);
  });
});

describe('clear errors: damaged checkpoints', function () {
  this.timeout(600000);
  let base: string;

  before(() => {
    // ema keeps tensors of its own: plugins.bin is written too
    base = join(tmp(), 'run');
    const r = run(['train', ...SMALL, '--epochs', '1', '--plugin', 'ema', '--out', base]);
    expect(r.code, r.err).to.equal(0);
  });

  const FILES = ['state.json', 'optimizer.json', 'optimizer.bin', 'plugins.bin', 'model/model.json', 'model/weights.bin'];
  const damage: Record<string, (f: string) => void> = {
    truncated: (f) => truncateSync(f, Math.floor(statSync(f).size / 2)),
    garbled: (f) =>
      f.endsWith('.json')
        ? writeFileSync(f, Buffer.concat([Buffer.from([0xfe, 0x00, 0x7b, 0x22]), readFileSync(f).subarray(4)]))
        : writeFileSync(f, Buffer.concat([readFileSync(f), Buffer.alloc(100, 0xab)])),
    missing: (f) => rmSync(f),
  };

  for (const file of FILES) {
    it(`${file} truncated, garbled or missing: one message naming the file and what failed`, () => {
      for (const [how, apply] of Object.entries(damage)) {
        const out = join(tmp(), 'run');
        cpSync(base, out, { recursive: true });
        const path = join(out, 'checkpoint', file);
        apply(path);
        const r = run(['train', '--resume', out]);
        // the manifest's sizes and SHA-256 catch each before any file is parsed (one generation: nothing to fall back to)
        const what =
          how === 'missing'
            ? 'is missing'
            : how === 'truncated' || file.endsWith('.bin')
              ? 'has [\\d,]+ bytes, the manifest [\\d,]+ \\(truncated or appended to\\)'
              : 'does not match its SHA-256 in manifest\\.json \\(changed after it was written\\)';
        const re = new RegExp(`error: checkpoint file ${escape(path)} ${what}`);
        expectClean(r, re);
        expect(r.err, `${file} ${how}`).to.match(/restore the run folder from a backup, or train again into a new --out/);
        expect(r.err).to.not.match(/^epoch/m);
      }
    });
  }
});

describe('clear errors: --resume with flags', function () {
  this.timeout(300000);
  let base: string;

  before(() => {
    base = join(tmp(), 'run');
    // a preset's run: its plain resume used to warn "config differs" (the preset's name was not in the resumed config)
    const r = run(['train', '--preset', 'quickstart', ...SMALL, '--epochs', '2', '--schedule', 'cosine', '--lr', '0.05', '--out', base]);
    expect(r.code, r.err).to.equal(0);
  });

  const copy = () => {
    const out = join(tmp(), 'run');
    cpSync(base, out, { recursive: true });
    return out;
  };

  it('a plain resume prints no warning', () => {
    const r = run(['train', '--resume', copy()]);
    expect(r.code, r.err).to.equal(0);
    expect(r.err).to.match(/resumed from /);
    expect(r.err).to.not.match(/warning|differ/);
  });

  it('--epochs extends the run and says how the schedule changes; fewer epochs than done are refused', () => {
    const out = copy();
    const r = run(['train', '--resume', out, '--epochs', '4']);
    expect(r.code, r.err).to.equal(0);
    // cosine over 4 epochs at step 8 (epoch 2 done) is at half the base lr; the 2-epoch run had reached 0
    expect(r.err).to.match(
      /resumed with epochs 2 -> 4; the cosine schedule now spans 4 epochs: the lr at step 8 is 0\.0250 \(0\.00 in the 2-epoch run\)/,
    );
    expect(r.err).to.match(/^epoch 3\/4: .* lr 0\.0\d+/m);
    expect(JSON.parse(r.out.trim().split('\n').at(-1)!).epochs).to.equal(4);
    const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(rows.map((l) => (JSON.parse(l) as { epoch: number }).epoch)).to.deep.equal([1, 2, 3, 4]);
    expectClean(
      run(['train', '--resume', out, '--epochs', '3']),
      /--epochs 3: the run is after epoch 4 already\n {2}give --epochs 4 or more/,
    );
  });

  it('refuses flags that change what the run trains, naming each with the recorded and the new value', () => {
    const out = copy();
    const before = readFileSync(join(out, 'checkpoint', 'state.json'), 'utf8');
    const r = run([
      'train',
      '--resume',
      out,
      '--lr',
      '0.5',
      '--model',
      'resnet20',
      '--batch-size',
      '32',
      '--plugin',
      'mixup',
      '--epochs',
      '3',
    ]);
    expectClean(
      r,
      /--resume .*: these flags change what the run trains: --model resnet20 \(the run has small-cnn\); --batch-size 32 \(the run has 64\); --lr 0\.5 \(the run has 0\.05\); --plugin mixup \(the run has no plugin mixup\)/,
    );
    expect(r.err).to.match(
      /a resumed run may change only --epochs, --limit-val, --backend, --grad-accum, --on-divergence, --no-checkpoint/,
    );
    expectClean(run(['train', '--resume', out, '--lr', '0.1']), /this flag changes what the run trains: --lr 0\.1 \(the run has 0\.05\)/);
    expect(readFileSync(join(out, 'checkpoint', 'state.json'), 'utf8')).to.equal(before);
    // the recorded value again is no change
    const same = run(['train', '--resume', out, '--lr', '0.05', '--data', 'digits', '--preset', 'quickstart']);
    expect(same.code, same.err).to.equal(0);
  });

  it('says "no checkpoint" for a folder without one', () => {
    expectClean(run(['train', '--resume', tmp()]), /no checkpoint\/ in that directory/);
    expect(existsSync(base)).to.equal(true);
  });
});
