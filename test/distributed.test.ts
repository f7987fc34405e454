/**
 * A study on BullMQ for real: redis-server, a coordinator (`tricks ablate --queue`) and two
 * `tricks worker` processes standing in for two machines that share a directory. One worker is
 * SIGKILLed in the middle of a run; the study must still finish, the killed run must resume from
 * its checkpoint on the other worker, and no run may write its result twice.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tricks = join(root, 'core', 'cli', 'bin', 'tricks.js');
const preset = join(root, 'test', 'fixtures', 'distributed', 'tiny-ladder.mjs');
const PASSWORD = 'e2e:s3cr3t/pa55@word';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Attempt {
  event: string;
  worker: string;
  pid: number;
  checkpointEpoch?: number;
  resumedFrom?: number;
  attempt: number;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

async function until<T>(what: string, f: () => T | undefined | false, timeoutMs: number, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Every file under dir, recursively. */
function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

describe('distributed study: redis-server, a coordinator and two workers, one SIGKILLed mid-run', function () {
  this.timeout(420000);
  let dir: string;
  let port: number;
  let url: string;
  const procs: ChildProcess[] = [];
  const extraPids: number[] = [];
  const logs: string[] = [];

  /** Starts a process with stdout and stderr in DIR/name.log. */
  function start(name: string, cmd: string, args: string[], detached = false): ChildProcess {
    const log = join(dir, `${name}.log`);
    logs.push(log);
    const fd = openSync(log, 'a');
    const p = spawn(cmd, args, { cwd: root, stdio: ['ignore', fd, fd], env: { ...process.env, TRICKS_VERBOSE: '' }, detached });
    procs.push(p);
    return p;
  }
  const exited = (p: ChildProcess) =>
    p.exitCode !== null || p.signalCode !== null
      ? Promise.resolve(p.exitCode)
      : new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  const tricksProc = (name: string, args: string[], detached = false) => start(name, process.execPath, [tricks, ...args], detached);
  const log = (name: string) => (existsSync(join(dir, `${name}.log`)) ? readFileSync(join(dir, `${name}.log`), 'utf8') : '');
  const worker = (name: string, detached = false) =>
    tricksProc(name, ['worker', '--queue', url, '--backend', 'wasm', '--lock-duration', '5000', '--stalled-interval', '2000'], detached);
  /** Stops every running worker (SIGTERM; they are idle), then starts `name` and waits until it is ready. */
  const soleWorker = async (name: string) => {
    const others = procs.slice(1).filter((p) => p.exitCode === null && p.signalCode === null);
    for (const p of others) p.kill('SIGTERM');
    await Promise.all(others.map(exited));
    const w = worker(name);
    await until(`${name} to be ready`, () => /waiting for jobs/.test(log(name)), 60000);
    return w;
  };
  /** `tricks sweep --no-wait` of the tiny ladder over `grid`, one seed, into `out` on the queue. */
  const enqueueSweep = (name: string, out: string, grid: string) =>
    tricksProc(name, ['sweep', '--preset', preset, '--grid', grid, '--seeds', '1', '--out', out, '--queue', url, '--no-wait']);
  const attempts = (runDir: string): Attempt[] =>
    existsSync(join(runDir, 'attempts.jsonl'))
      ? readFileSync(join(runDir, 'attempts.jsonl'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Attempt)
      : [];
  const ckptEpoch = (runDir: string) => {
    for (const d of ['checkpoint', 'checkpoint.old']) {
      try {
        return (JSON.parse(readFileSync(join(runDir, d, 'state.json'), 'utf8')) as { epoch: number }).epoch;
      } catch {
        /* not there (yet) */
      }
    }
    return 0;
  };

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'tricks-dist-e2e-'));
    port = await freePort();
    const redis = start('redis', 'redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--maxmemory-policy',
      'noeviction',
      '--requirepass',
      PASSWORD,
    ]);
    await until(
      'redis-server to accept connections',
      () => log('redis').includes('Ready to accept connections') || (redis.exitCode !== null && 'exit'),
      20000,
    );
    expect(redis.exitCode, log('redis')).to.equal(null);
    url = `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}`;
  });

  after(async function () {
    this.timeout(30000);
    // Workers first, gracefully; then whatever is left, Redis last.
    for (const p of procs.slice(1)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    await Promise.race([Promise.all(procs.slice(1).map(exited)), sleep(10000)]);
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const pid of extraPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    procs[0]?.kill('SIGTERM');
    await Promise.race([exited(procs[0]), sleep(5000)]);
    if (procs[0] && procs[0].exitCode === null && procs[0].signalCode === null) procs[0].kill('SIGKILL');
    if (process.env.TRICKS_E2E_KEEP) console.log(`kept ${dir}`);
    else if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('finishes all 6 runs, resumes the killed run from its checkpoint, writes each result once and the report', async () => {
    const out = join(dir, 'study');
    const runs = join(out, 'runs');
    const workers = [worker('worker-a'), worker('worker-b')];
    await until('both workers to be ready', () => ['worker-a', 'worker-b'].every((w) => /waiting for jobs/.test(log(w))), 60000);
    const coordinator = tricksProc('coordinator', ['ablate', '--preset', preset, '--seeds', '2', '--out', out, '--queue', url]);

    // The victim: a worker in the middle of a run that has a checkpoint (epoch 1..3 of 5) and no result yet.
    const victim = await until(
      'a run in the middle of training with a checkpoint',
      () => {
        if (!existsSync(runs)) return undefined;
        for (const id of readdirSync(runs)) {
          const runDir = join(runs, id);
          const a = attempts(runDir);
          const e = ckptEpoch(runDir);
          const w = workers.find((p) => a.at(-1)?.event === 'start' && a.at(-1)!.worker.endsWith(`:${p.pid}`));
          if (w && e >= 1 && e <= 3 && !existsSync(join(runDir, 'result.json')))
            return { id, runDir, worker: w, childPid: a.at(-1)!.pid, epoch: e };
        }
        return undefined;
      },
      240000,
      50,
    );
    extraPids.push(victim.childPid);
    victim.worker.kill('SIGKILL');
    const survivor = workers.find((w) => w !== victim.worker)!;
    // The killed worker's training process notices at once and stops: it must not go on writing.
    await until(`the killed worker's training process ${victim.childPid} to exit`, () => !alive(victim.childPid), 15000);

    const code = await exited(coordinator);
    const coordLog = log('coordinator');
    expect(code, coordLog).to.equal(0);
    expect(coordLog).to.match(/queue: \d\/6 done, \d running/);
    expect(coordLog).to.match(/6\/6 done/);

    // The report: same files as a local study, every step with both seeds.
    for (const f of ['ablation.json', 'ablation.md', 'ladder.png', 'curves.png', 'study.json', 'queue.json'])
      expect(existsSync(join(out, f)), f).to.equal(true);
    const ablation = JSON.parse(readFileSync(join(out, 'ablation.json'), 'utf8')) as {
      steps: { stepName: string; n: number; seeds: number[] }[];
      runs: { id: string }[];
    };
    expect(ablation.steps.map((s) => s.stepName)).to.deep.equal(['baseline', 'label smoothing', 'cosine']);
    expect(ablation.steps.map((s) => s.n)).to.deep.equal([2, 2, 2]);
    expect(ablation.runs).to.have.length(6);
    const summary = JSON.parse(
      coordLog
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .at(-1)!,
    ) as { steps: unknown[]; failed: string[] };
    expect(summary.steps).to.have.length(3);
    expect(summary.failed).to.deep.equal([]);

    // Each run wrote its result exactly once.
    const ids = readdirSync(runs);
    expect(ids).to.have.length(6);
    for (const id of ids) {
      const a = attempts(join(runs, id));
      expect(
        a.filter((e) => e.event === 'result-written'),
        `${id}: ${JSON.stringify(a)}`,
      ).to.have.length(1);
      expect(existsSync(join(runs, id, 'result.json'))).to.equal(true);
    }

    // The killed run: started twice, the second time on the survivor from the checkpoint, not from epoch 0.
    const va = attempts(victim.runDir);
    const starts = va.filter((e) => e.event === 'start');
    expect(starts.length, JSON.stringify(va)).to.be.at.least(2);
    expect(starts[0].worker.endsWith(`:${victim.worker.pid}`)).to.equal(true);
    const resumed = starts.at(-1)!;
    expect(resumed.worker.endsWith(`:${survivor.pid}`)).to.equal(true);
    expect(resumed.checkpointEpoch).to.be.at.least(victim.epoch);
    const written = va.find((e) => e.event === 'result-written')!;
    expect(written.worker.endsWith(`:${survivor.pid}`)).to.equal(true);
    const rec = JSON.parse(readFileSync(join(victim.runDir, 'result.json'), 'utf8')) as {
      resumedFrom?: number;
      epochs: { epoch: number }[];
    };
    expect(rec.resumedFrom).to.be.at.least(1);
    expect(rec.epochs.map((e) => e.epoch)).to.deep.equal([1, 2, 3, 4, 5]);
    // No other run was started twice.
    for (const id of ids.filter((i) => i !== victim.id))
      expect(attempts(join(runs, id)).filter((e) => e.event === 'start')).to.have.length(1);

    // The password is in no log, result or report.
    for (const f of [...files(out), ...logs]) {
      if (/\.(png|bin)$/.test(f) || f.includes('/model/')) continue;
      const text = readFileSync(f, 'utf8');
      expect(text.includes('s3cr3t'), f).to.equal(false);
      expect(text.includes(encodeURIComponent(PASSWORD)), f).to.equal(false);
    }
    expect(coordLog).to.include('redis://:***@127.0.0.1');
  });

  it('adds no work when the finished study is submitted again', async () => {
    const out = join(dir, 'study');
    const before = readdirSync(join(out, 'runs')).map((id) => readFileSync(join(out, 'runs', id, 'attempts.jsonl'), 'utf8'));
    const again = tricksProc('coordinator-again', ['ablate', '--preset', preset, '--seeds', '2', '--out', out, '--queue', url]);
    expect(await exited(again), log('coordinator-again')).to.equal(0);
    expect(log('coordinator-again')).to.match(/0 run\(s\) enqueued, 0 already queued, 6 already finished/);
    const after = readdirSync(join(out, 'runs')).map((id) => readFileSync(join(out, 'runs', id, 'attempts.jsonl'), 'utf8'));
    expect(after).to.deep.equal(before);
  });

  it('a worker stopped with SIGTERM checkpoints, puts the run back without using an attempt, and --collect finishes it elsewhere', async () => {
    const out = join(dir, 'graceful');
    const runDir = join(out, 'p0-s0');
    // Only one worker in this scenario: stop the survivors of the first test (gracefully; they are idle).
    const w = await soleWorker('worker-c');
    const submit = enqueueSweep('coordinator-graceful', out, '{"optimizer.lr":[0.07]}');
    expect(await exited(submit), log('coordinator-graceful')).to.equal(0);
    expect(log('coordinator-graceful')).to.match(
      /follow it with: tricks sweep --collect --queue redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ --out /,
    );
    await until(
      'a checkpoint of the run',
      () => ckptEpoch(runDir) >= 1 && ckptEpoch(runDir) <= 3 && !existsSync(join(runDir, 'result.json')),
      180000,
      50,
    );
    w.kill('SIGTERM');
    expect(await exited(w), log('worker-c')).to.equal(0);
    const stopped = attempts(runDir);
    expect(stopped.map((e) => e.event)).to.deep.equal(['start', 'interrupted']);

    worker('worker-d');
    const collect = tricksProc('coordinator-collect', ['sweep', '--collect', '--queue', url, '--out', out]);
    expect(await exited(collect), log('coordinator-collect')).to.equal(0);
    const a = attempts(runDir);
    expect(a.map((e) => e.event)).to.deep.equal(['start', 'interrupted', 'start', 'result-written']);
    // The same attempt number both times: a graceful stop does not count as a failure.
    expect(a.map((e) => e.attempt)).to.deep.equal([1, 1, 1, 1]);
    expect(a[2].checkpointEpoch).to.be.at.least(1);
    const rec = JSON.parse(readFileSync(join(runDir, 'result.json'), 'utf8')) as { resumedFrom?: number };
    expect(rec.resumedFrom).to.equal(a[2].checkpointEpoch);
    expect(existsSync(join(out, 'ablation.json'))).to.equal(true);
  });

  it('stops its training process on SIGTERM as a job starts, and on Ctrl-C (SIGINT to its process group) mid-run; both runs resume elsewhere', async () => {
    const out = join(dir, 'signals');
    const runDirs = ['p0-s0', 'p1-s0'].map((id) => join(out, id));
    const startedBy = (w: ChildProcess) =>
      runDirs.find((d) => attempts(d).some((e) => e.event === 'start' && e.worker.endsWith(`:${w.pid}`)));
    const early = await soleWorker('worker-e');
    const submit = enqueueSweep('coordinator-signals', out, '{"optimizer.lr":[0.07,0.08]}');
    expect(await exited(submit), log('coordinator-signals')).to.equal(0);

    // 1. SIGTERM the moment the worker takes a job: its process is still starting, BullMQ's cancel message misses it.
    await until('worker-e to take a job', () => /training p\d-s0/.test(log('worker-e')), 60000, 10);
    early.kill('SIGTERM');
    expect(await exited(early), log('worker-e')).to.equal(0);
    const first = startedBy(early)!;
    const a1 = attempts(first);
    expect(
      a1.map((e) => e.event),
      log('worker-e'),
    ).to.deep.equal(['start', 'interrupted']);
    expect(alive(a1[0].pid), 'the training process of worker-e').to.equal(false);
    expect(existsSync(join(first, 'result.json'))).to.equal(false);

    // 2. Ctrl-C: SIGINT to the worker and its training process at once, in the middle of a run with a checkpoint.
    const ctrlC = worker('worker-f', true);
    const second = await until(
      'worker-f in the middle of a run with a checkpoint',
      () => {
        const d = startedBy(ctrlC);
        return d && ckptEpoch(d) >= 1 && ckptEpoch(d) <= 3 && attempts(d).at(-1)?.event === 'start' ? d : undefined;
      },
      180000,
      20,
    );
    process.kill(-ctrlC.pid!, 'SIGINT');
    expect(await exited(ctrlC), log('worker-f')).to.equal(0);
    const a2 = attempts(second).filter((e) => e.worker.endsWith(`:${ctrlC.pid}`));
    expect(a2.map((e) => e.event)).to.deep.equal(['start', 'interrupted']);
    expect(alive(a2[0].pid), 'the training process of worker-f').to.equal(false);
    const stoppedAt = ckptEpoch(second);
    expect(stoppedAt).to.be.at.least(1);

    // 3. Both runs stay resumable: another worker finishes them, no attempt used up by the stops.
    worker('worker-g');
    const collect = tricksProc('coordinator-signals-collect', ['sweep', '--collect', '--queue', url, '--out', out]);
    expect(await exited(collect), log('coordinator-signals-collect')).to.equal(0);
    for (const d of runDirs) {
      const a = attempts(d);
      expect(
        a.filter((e) => e.event === 'result-written'),
        JSON.stringify(a),
      ).to.have.length(1);
      expect(
        a.every((e) => e.attempt === 1),
        JSON.stringify(a),
      ).to.equal(true);
    }
    const resumed = attempts(second)
      .filter((e) => e.event === 'start')
      .at(-1)!;
    expect(resumed.checkpointEpoch).to.be.at.least(stoppedAt);
  });

  it('retries a failing run with backoff, then reports it failed with its error', async () => {
    const out = join(dir, 'failing');
    const c = tricksProc('coordinator-fail', [
      'sweep',
      '--preset',
      preset,
      '--grid',
      '{"data":["fashion-mnist:/nonexistent/fm"]}',
      '--seeds',
      '1',
      '--retries',
      '1',
      '--backoff',
      '500',
      '--out',
      out,
      '--queue',
      url,
    ]);
    const code = await exited(c);
    const text = log('coordinator-fail');
    expect(code, text).to.equal(1);
    expect(text).to.match(/run p0-s0 failed after 2 attempt\(s\): .*\/nonexistent\/fm does not exist/);
    expect(text).to.match(/error: 1 of 1 runs did not finish: p0-s0/);
    const a = attempts(join(out, 'p0-s0'));
    expect(a.filter((e) => e.event === 'error')).to.have.length(2);
    expect(text.includes('s3cr3t')).to.equal(false);
  });
});
