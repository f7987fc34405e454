/**
 * Fault injection through the real CLI, as an operator would meet faults: kill -9 at seeded random moments
 * (also inside the checkpoint write window, through the test-only pause between its renames, and twice in
 * a row), every checkpoint file damaged, a full disk, a read-only folder, two runs on one folder, export
 * aimed at a run. After each fault the run either resumes to the same end (one metrics row per epoch, no
 * temp files, no lock left) or is refused with one clear message. The suite prints its counts.
 */
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DirCheckpointer } from '@tricks/checkpoint';
import { root, tmp, tricks } from './cli-helpers.js';

/** 256 digits, batches of 32: 8 steps an epoch. */
const SMALL = ['--data', 'digits', '--limit-train', '256', '--limit-val', '64', '--batch-size', '32', '--backend', 'wasm'];
const EPOCHS = 5;
const counts = { kills: 0, inWindow: 0, double: 0, resumes: 0, damaged: 0, refused: 0, skipped: [] as string[] };

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  err: string;
  out: string;
}

/** Starts the CLI; `kill` (when given) sends SIGKILL `delay` ms after stderr first matches `when`. */
function start(
  args: string[],
  o: { env?: NodeJS.ProcessEnv; when?: RegExp; delay?: number } = {},
): { child: ChildProcess; done: Promise<Result> } {
  const child = spawn(process.execPath, [tricks, ...args], { cwd: root, env: { ...process.env, ...o.env } });
  let err = '',
    out = '',
    armed = Boolean(o.when);
  child.stderr!.on('data', (d) => {
    err += d;
    if (armed && o.when!.test(err)) {
      armed = false;
      setTimeout(() => child.kill('SIGKILL'), o.delay ?? 0);
    }
  });
  child.stdout!.on('data', (d) => (out += d));
  const done = new Promise<Result>((res) => child.on('close', (code, signal) => res({ code, signal, err, out })));
  return { child, done };
}

const run = (args: string[], env?: NodeJS.ProcessEnv) => start(args, { env }).done;

function expectClean(r: Result, re: RegExp): void {
  expect(r.code, r.err).to.equal(1);
  expect(r.err).to.match(re);
  expect(r.err).to.not.match(/^\s+at .+:\d+:\d+/m);
  expect(r.err).to.not.match(/internal error/);
}

const epochs = (out: string) =>
  existsSync(join(out, 'metrics.jsonl'))
    ? readFileSync(join(out, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { epoch: number }).epoch)
    : [];
/** Hidden files and folders: temp files and the lock (the export folder's mark aside). */
const hidden = (out: string) =>
  readdirSync(out, { recursive: true })
    .map(String)
    .filter((p) => p.split('/').some((n) => n.startsWith('.') && n !== '.tricks-export.json'));
const hasCheckpoint = (out: string) =>
  ['checkpoint', 'checkpoint.old'].some((d) => existsSync(join(out, d))) ||
  (existsSync(out) && readdirSync(out).some((n) => n.startsWith('.checkpoint.tmp-') && existsSync(join(out, n, 'manifest.json'))));

type Row = Record<string, number>;
/** metrics.jsonl without the timings: what an interrupted run must reproduce exactly. */
const rows = (out: string): Row[] =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const { seconds: _s, images_per_sec: _i, ...rest } = JSON.parse(l) as Row;
      return rest;
    });

/** A seeded generator for the kill moments (mulberry32). */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The finished run's end state: every epoch once, no temp file or lock. */
function expectFinished(out: string, r: Result): void {
  expect(r.code, r.err).to.equal(0);
  expect(JSON.parse(r.out.trim().split('\n').at(-1)!).epochs).to.equal(EPOCHS);
  expect(epochs(out)).to.deep.equal(Array.from({ length: EPOCHS }, (_, i) => i + 1));
  expect(hidden(out), 'no temp files, no lock').to.deep.equal([]);
}

describe('fault injection', function () {
  this.timeout(900000);
  /** The uninterrupted run's metrics (timings aside), and its time from the "data:" line to its exit. */
  let reference: Row[];
  let duration = 0;

  after(() => {
    console.log(
      `    fault injection: ${counts.kills} kill -9 (${counts.inWindow} inside the checkpoint write window, ${counts.double} double kills), ` +
        `${counts.resumes} resumes, ${counts.damaged} damaged checkpoint files, ${counts.refused} refusals` +
        (counts.skipped.length ? `; skipped: ${counts.skipped.join('; ')}` : ''),
    );
  });

  before(async () => {
    const out = join(tmp(), 'ref');
    const t = start(['train', ...SMALL, '--epochs', String(EPOCHS), '--out', out]);
    let t0 = 0;
    t.child.stderr!.on('data', (d) => (t0 ||= /^data: /m.test(String(d)) ? performance.now() : 0));
    const r = await t.done;
    duration = performance.now() - t0;
    expectFinished(out, r);
    reference = rows(out);
  });

  it('kill -9 at 6 seeded random moments: every kill leaves a run that resumes (or starts again), and it ends with each epoch once', async () => {
    const out = join(tmp(), 'run');
    const random = rng(7);
    let last: Result | undefined;
    for (let i = 0; i < 6; i++) {
      const args = hasCheckpoint(out)
        ? ['train', '--resume', out]
        : ['train', ...SMALL, '--epochs', String(EPOCHS), '--out', out, '--overwrite'];
      // a moment in what is left of the run (from its "data:" line): the epochs after the checkpoint, then export and report
      const done = epochs(out).length;
      const r = await start(args, { when: /^data: /m, delay: Math.floor(random() * 0.6 * duration * Math.max(0.2, 1 - done / EPOCHS)) })
        .done;
      if (args[1] === '--resume') counts.resumes++;
      if (r.signal === 'SIGKILL') counts.kills++;
      else {
        last = r;
        break;
      }
      // whatever the moment, what is on disk is a generation the store accepts (or no checkpoint yet); checked on a
      // copy, so the next resume recovers from exactly what the kill left
      if (hasCheckpoint(out)) {
        const copy = join(tmp(), 'run');
        cpSync(out, copy, { recursive: true });
        expect((await new DirCheckpointer().loadState(join(copy, 'checkpoint'))).epoch).to.be.within(1, EPOCHS);
      }
    }
    if (!last) {
      last = await run(
        hasCheckpoint(out) ? ['train', '--resume', out] : ['train', ...SMALL, '--epochs', String(EPOCHS), '--out', out, '--overwrite'],
      );
      counts.resumes++;
    }
    expectFinished(out, last);
    expect(rows(out), 'the same metrics as the uninterrupted run').to.deep.equal(reference);
  });

  it('kill -9 inside the write window (between the renames), twice in a row: the sealed new generation is found and the run ends right', async () => {
    const out = join(tmp(), 'run');
    const pause = { TRICKS_TEST_CHECKPOINT_PAUSE_MS: '4000' };
    const window = /test pause: .* sealed/;
    // the first kill lands in epoch 2's save: checkpoint/ has moved to checkpoint.old, the new one is a sealed tmp
    const first = await start(['train', ...SMALL, '--epochs', String(EPOCHS), '--out', out], {
      env: pause,
      when: /test pause: [^\n]*\n[^]*test pause: /,
    }).done;
    expect(first.signal).to.equal('SIGKILL');
    counts.kills++;
    counts.inWindow++;
    expect(existsSync(join(out, 'checkpoint')), 'killed between the renames').to.equal(false);
    expect(readdirSync(out).filter((n) => n.startsWith('.checkpoint.tmp-'))).to.have.length(1);
    // the second kill: the resumed run's first save, in the same window
    const second = await start(['train', '--resume', out], { env: pause, when: window }).done;
    expect(second.signal).to.equal('SIGKILL');
    expect(second.err).to.match(/resumed from .*: epoch 3, step 0/);
    counts.kills++;
    counts.inWindow++;
    counts.double++;
    const end = await run(['train', '--resume', out]);
    counts.resumes += 2;
    expect(end.err).to.match(/resumed from .*: epoch 4, step 0/);
    expectFinished(out, end);
    expect(rows(out), 'the same metrics as the uninterrupted run').to.deep.equal(reference);
  });

  it('each file of the newest generation truncated or garbled: the resume falls back to the previous generation with a warning and ends right', async () => {
    const base = join(tmp(), 'base');
    const r = await run(['train', ...SMALL, '--epochs', '3', '--plugin', 'ema', '--out', base]);
    expect(r.code, r.err).to.equal(0);
    const files = [
      'state.json',
      'optimizer.json',
      'optimizer.bin',
      'plugins.bin',
      'model/model.json',
      'model/weights.bin',
      'manifest.json',
    ];
    for (const [i, file] of files.entries()) {
      const out = join(tmp(), 'run');
      cpSync(base, out, { recursive: true });
      const path = join(out, 'checkpoint', file);
      if (i % 2) truncateSync(path, Math.floor(statSync(path).size / 2));
      else writeFileSync(path, Buffer.concat([Buffer.from('garbage!'), readFileSync(path).subarray(8)]));
      counts.damaged++;
      const res = await run(['train', '--resume', out, '--epochs', '4']);
      counts.resumes++;
      expect(res.code, `${file}: ${res.err}`).to.equal(0);
      expect(res.err).to.include(
        `warning: the newest checkpoint is damaged: ${file === 'manifest.json' ? join(out, 'checkpoint', 'manifest.json') : path}`,
      );
      expect(res.err).to.match(/resumed from .*: epoch 3, step 0/);
      expect(epochs(out), file).to.deep.equal([1, 2, 3, 4]);
    }
  });

  it('two runs on one folder: the second is refused while the first runs, the first ends right; a new run needs --overwrite', async () => {
    const out = join(tmp(), 'run');
    const first = start(['train', ...SMALL, '--epochs', String(EPOCHS), '--out', out], {
      env: { TRICKS_TEST_CHECKPOINT_PAUSE_MS: '1500' },
    });
    await new Promise<void>((res) => first.child.stderr!.on('data', () => existsSync(join(out, '.tricks.lock')) && res()));
    const second = await run(['train', ...SMALL, '--epochs', '1', '--out', out]);
    expectClean(second, new RegExp(`is in use by another run \\(PID ${first.child.pid} on `));
    counts.refused++;
    expectFinished(out, await first.done);
    const third = await run(['train', ...SMALL, '--epochs', '1', '--out', out]);
    expectClean(
      third,
      /holds another run \(run\.json, metrics\.jsonl, checkpoint, checkpoint\.old\)\n {2}continue it with `tricks train --resume/,
    );
    counts.refused++;
    const fourth = await run(['train', ...SMALL, '--epochs', '1', '--out', out, '--overwrite']);
    expect(fourth.code, fourth.err).to.equal(0);
    expect(fourth.err).to.match(/--overwrite: removed the previous run's run\.json, metrics\.jsonl, checkpoint, checkpoint\.old/);
    expect(epochs(out)).to.deep.equal([1]);
  });

  it('export aimed at a run folder or a file is refused, and the run stays whole', async () => {
    const out = join(tmp(), 'run');
    expect((await run(['train', ...SMALL, '--epochs', '1', '--out', out])).code).to.equal(0);
    const before = readdirSync(out).sort();
    const r = await run(['export', '--model', join(out, 'model'), '--format', 'tfjs-uint8', '--out', out]);
    expectClean(r, /--out .* is not empty and was not written by tricks export/);
    const file = join(out, 'run.json');
    expectClean(
      await run(['export', '--model', join(out, 'model'), '--format', 'tfjs', '--out', file]),
      /--out .* is a file, not a folder/,
    );
    counts.refused += 2;
    expect(readdirSync(out).sort()).to.deep.equal(before);
    // its own folder: written, then replaced by the next export
    const own = join(out, 'export-uint8');
    for (let i = 0; i < 2; i++) {
      const e = await run(['export', '--model', join(out, 'model'), '--format', 'tfjs-uint8', '--out', own]);
      expect(e.code, e.err).to.equal(0);
    }
    expect(readdirSync(own).sort()).to.include.members(['.tricks-export.json', 'model.json']);
  });

  it('a full disk mid-run (ENOSPC on a tmpfs) and a read-only folder: clear messages, the last good checkpoint resumes', async function () {
    const dir = tmp();
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', dir], { encoding: 'utf8' });
    if (m.status !== 0) {
      const why = `cannot mount a tmpfs here (${(m.stderr || m.error?.message || '').trim()}; it needs root)`;
      console.log(`    (skipped: ${why})`);
      counts.skipped.push(why);
      this.skip();
    }
    try {
      const out = join(dir, 'run');
      const r = await run(['train', ...SMALL, '--epochs', String(EPOCHS), '--out', out]);
      expectClean(r, /the disk is full \(ENOSPC\): could not write .*checkpoint/);
      counts.refused++;
      expect(hidden(out)).to.deep.equal([]);
      const copy = join(tmp(), 'run');
      cpSync(out, copy, { recursive: true });
      spawnSync('mount', ['-o', 'remount,ro', dir]);
      const ro = await run(['train', '--resume', out]);
      expectClean(ro, /is on a read-only file system/);
      counts.refused++;
      const end = await run(['train', '--resume', copy]);
      counts.resumes++;
      expectFinished(copy, end);
    } finally {
      spawnSync('umount', [dir]);
    }
  });
});
