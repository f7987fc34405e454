import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { TricksError, MemoryLogger, resolveConfig } from '@tricks/core';
import { configHash, diffConfigs, jobIdFor, QUEUE_NAME, readAttempts } from '../src/jobs.js';
import { startWorker } from '../src/worker.js';
import { startLocalRedis, type LocalRedis } from '../src/local-redis.js';
import { checkRedis } from '../src/redis.js';
import type { RunSpec } from '../src/runner.js';
import { eta, progressLine, submitStudy, type RunStatus } from '../src/study.js';
import { applyPoint, gridPoints, parseGrid, planSweep } from '../src/sweep.js';
import { parseQueueUrl, redact, redactUrl } from '../src/url.js';
import { tmp } from './helpers.js';

const throwsTricks = (f: () => unknown, re: RegExp) => {
  try {
    f();
  } catch (e) {
    expect(e).to.be.instanceOf(TricksError);
    expect(`${(e as Error).message}\n${(e as TricksError & { hint?: string }).hint ?? ''}`).to.match(re);
    return e as TricksError;
  }
  throw new Error(`expected a TricksError matching ${re}`);
};

/** A preset file with a 2-step ladder and no plugins (resolves in milliseconds). */
function presetFile(): string {
  const dir = tmp('tricks-dist-');
  const f = join(dir, 'p.mjs');
  writeFileSync(
    f,
    `export default { name: 'p', description: '', settings: { epochs: 2, model: { name: 'small-cnn', options: { width: 8 } } }, ladder: [{ name: 'base' }, { name: 'cos', settings: { schedule: { name: 'cosine' } } }] };`,
  );
  return f;
}

describe('distributed: queue URLs and redaction', () => {
  it('parses redis:// and rediss:// URLs into connection options', () => {
    const a = parseQueueUrl('redis://example.org', {});
    expect(a.connection).to.include({ host: 'example.org', port: 6379, db: 0, maxRetriesPerRequest: null });
    expect(a.connection.tls).to.equal(undefined);
    const b = parseQueueUrl('rediss://user:p%40ss%3Aword@10.0.0.1:6380/3', {});
    expect(b.connection).to.include({ host: '10.0.0.1', port: 6380, db: 3, username: 'user', password: 'p@ss:word' });
    expect(b.connection.tls).to.deep.equal({});
    expect(parseQueueUrl('rediss://redis.example.org', {}).connection.tls).to.deep.equal({ servername: 'redis.example.org' });
    expect(b.display).to.equal('rediss://user:***@10.0.0.1:6380/3');
    expect(b.secrets).to.include('p@ss:word');
    const c = parseQueueUrl('redis://h:1', { TRICKS_REDIS_PASSWORD: 'fromenv' });
    expect(c.connection.password).to.equal('fromenv');
    expect(c.display).to.equal('redis://h:1');
  });

  it('rejects bad URLs with a message that does not show the password', () => {
    const e = throwsTricks(() => parseQueueUrl('http://:hunter2secret@host:1', {}), /unsupported scheme "http"/);
    expect(e.message).to.not.include('hunter2secret');
    throwsTricks(() => parseQueueUrl('redis://h/abc', {}), /"abc" is not a database number/);
    throwsTricks(() => parseQueueUrl('not a url', {}), /not a URL/);
    throwsTricks(() => parseQueueUrl('rediss://h', { TRICKS_REDIS_CA: '/nonexistent/ca.pem' }), /TRICKS_REDIS_CA=\/nonexistent\/ca.pem/);
  });

  it('redacts passwords in URLs and free text', () => {
    expect(redactUrl('redis://:s3cr3t@h:1/2')).to.equal('redis://:***@h:1/2');
    expect(redactUrl('junk//u:s3cr3t@h')).to.equal('junk//***@h');
    const text = 'failed to connect to redis://admin:s3cr3t@h:1 (auth s3cr3t rejected)';
    const out = redact(text, ['s3cr3t']);
    expect(out).to.not.include('s3cr3t');
    expect(out).to.include('redis://admin:***@h:1');
  });
});

describe('distributed: sweep planning', () => {
  it('checks the grid and names the mistake', () => {
    throwsTricks(() => parseGrid('{bad'), /--grid: not valid JSON/);
    throwsTricks(() => parseGrid('{"optimiser.lr":[0.1]}'), /unknown setting "optimiser" \(did you mean "optimizer"\?\)/);
    throwsTricks(() => parseGrid('{"optimizer.lr":[]}'), /list of values is empty/);
    throwsTricks(() => parseGrid('{"plugins.mixup":[1]}'), /plugins\.NAME\.OPTION/);
    throwsTricks(() => parseGrid('{"optimizer.lr":{"loguniform":[0.01,0.1]}}'), /only a random search samples/);
    expect(parseGrid('{"optimizer.lr":{"loguniform":[0.01,0.1]}}', 4)).to.deep.equal({ 'optimizer.lr': { loguniform: [0.01, 0.1] } });
  });

  it('enumerates the product, or draws distinct random points deterministically', () => {
    const grid = parseGrid('{"plugins.mixup.alpha":[0.2,0.4],"optimizer.lr":[0.05,0.1,0.2]}');
    const all = gridPoints(grid);
    expect(all).to.have.length(6);
    expect(all[0]).to.deep.equal({ 'plugins.mixup.alpha': 0.2, 'optimizer.lr': 0.05 });
    expect(all[1]).to.deep.equal({ 'plugins.mixup.alpha': 0.2, 'optimizer.lr': 0.1 });
    const r1 = gridPoints(grid, 4, 7);
    expect(r1).to.have.length(4);
    expect(new Set(r1.map((p) => JSON.stringify(p))).size).to.equal(4);
    expect(gridPoints(grid, 4, 7)).to.deep.equal(r1);
    expect(gridPoints(grid, 100, 7)).to.have.length(6);
    const d = gridPoints(parseGrid('{"optimizer.lr":{"loguniform":[0.01,0.1]},"epochs":{"int":[1,3]}}', 50), 50, 1);
    for (const p of d) {
      expect(p['optimizer.lr']).to.be.within(0.01, 0.1);
      expect([1, 2, 3]).to.include(p.epochs);
    }
  });

  it('applies a point to the user config: plugin options and nested settings', () => {
    const base = { optimizer: { name: 'sgd', momentum: 0.9 }, plugins: [['mixup', { alpha: 1, offEpoch: 3 }]] as never };
    const c = applyPoint(base, { 'plugins.mixup.alpha': 0.2, 'plugins.cutmix.alpha': 1, 'optimizer.lr': 0.1 });
    expect(c.optimizer).to.deep.equal({ name: 'sgd', momentum: 0.9, lr: 0.1 });
    expect(c.plugins).to.deep.equal([
      ['mixup', { alpha: 0.2, offEpoch: 3 }],
      ['cutmix', { alpha: 1 }],
    ]);
    expect(base.optimizer).to.deep.equal({ name: 'sgd', momentum: 0.9 });
  });

  it('plans point x seed runs over the whole recipe of the preset, and they resolve', async () => {
    const preset = presetFile();
    const out = tmp('tricks-sweep-');
    const specs = await planSweep({ preset, grid: parseGrid('{"optimizer.lr":[0.05,0.1]}'), seeds: 2, seed: 3, overrides: {}, out });
    expect(specs.map((s) => s.id)).to.deep.equal(['p0-s3', 'p0-s4', 'p1-s3', 'p1-s4']);
    expect(specs.every((s) => s.ladderStep === 1)).to.equal(true);
    expect(specs[2].out).to.equal(join(out, 'p1-s3'));
    const { config } = await resolveConfig(
      { ...specs[2].overrides, preset, seed: specs[2].seed, out: specs[2].out },
      { ladderStep: specs[2].ladderStep },
    );
    expect(config.optimizer.lr).to.equal(0.1);
    expect(config.schedule.name).to.equal('cosine');
    expect(config.seed).to.equal(3);
  });
});

describe('distributed: job ids, config checks, progress', () => {
  const spec = (out: string): RunSpec => ({
    id: 's1:base/seed0',
    preset: 'p',
    ladderStep: 0,
    stepName: 'base',
    trick: 'baseline',
    seed: 0,
    overrides: {},
    out,
  });

  it('gives deterministic job ids that change with the output location and the config', () => {
    const a = jobIdFor(spec('/shared/a'), 'h1');
    expect(a).to.equal(jobIdFor(spec('/shared/a'), 'h1'));
    expect(a).to.not.equal(jobIdFor(spec('/shared/b'), 'h1'));
    expect(a).to.not.equal(jobIdFor(spec('/shared/a'), 'h2'));
    expect(a).to.match(/^s1_base_seed0-[0-9a-f]{16}$/);
  });

  it('compares resolved configs, ignoring the output path and the backend', async () => {
    const preset = presetFile();
    const a = (await resolveConfig({ preset, out: '/x', backend: 'wasm' })).config;
    const b = (await resolveConfig({ preset, out: '/y', backend: 'cpu' })).config;
    expect(diffConfigs(a, b)).to.deep.equal([]);
    expect(configHash(a)).to.equal(configHash(b));
    const c = (await resolveConfig({ preset, out: '/x', epochs: 3 })).config;
    expect(diffConfigs(a, c)).to.deep.equal(['epochs: 2 vs 3']);
    expect(configHash(a)).to.not.equal(configHash(c));
  });

  it('estimates the time left from finished runs and running progress', () => {
    const runs: RunStatus[] = [
      { id: 'a', jobId: 'a', state: 'done', attempts: 1, seconds: 100 },
      { id: 'b', jobId: 'b', state: 'running', attempts: 1, progress: { epoch: 1, epochs: 2, worker: 'w1' } },
      { id: 'c', jobId: 'c', state: 'running', attempts: 1, progress: { epoch: 0, epochs: 2, worker: 'w2' } },
      { id: 'd', jobId: 'd', state: 'waiting', attempts: 0 },
    ];
    // Work left: 0.5 + 1 + 1 runs of 100 s, two at a time.
    expect(eta(runs, new Map())).to.equal(125);
    expect(progressLine(runs, 125)).to.equal(
      'queue: 1/4 done, 2 running, 1 waiting, 0 failed; ETA 2 min [b epoch 1/2 on w1; c epoch 0/2 on w2]',
    );
    expect(
      eta([{ id: 'x', jobId: 'x', state: 'running', attempts: 1, progress: { epoch: 1, epochs: 4, worker: 'w' } }], new Map([['x', 30]])),
    ).to.equal(90);
  });
});

describe('distributed: against a real redis-server', function () {
  this.timeout(60000);
  const password = 'pa55:w/rd@pr1vate';
  let redis: LocalRedis;
  before(async () => {
    redis = await startLocalRedis({ password });
  });
  after(async () => {
    await redis?.stop();
  });

  it('says which URL it could not reach, without the password', async () => {
    const wrong = parseQueueUrl(`redis://:${encodeURIComponent('wrong-' + password)}@127.0.0.1:${redis.port}`, {});
    let err: Error | undefined;
    await checkRedis(wrong, () => {}).catch((e: Error) => (err = e));
    expect(err).to.be.instanceOf(TricksError);
    expect(err!.message).to.match(/cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1/);
    expect(err!.message).to.not.include('pr1vate');
  });

  it('warns when Redis may evict jobs or has no AOF', async () => {
    const target = parseQueueUrl(redis.url, {});
    const warnings: string[] = [];
    await checkRedis(target, (m) => warnings.push(m));
    expect(warnings).to.deep.equal([]);
    const admin = new Redis({ ...target.connection });
    try {
      await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
      await admin.config('SET', 'appendonly', 'no');
      await checkRedis(target, (m) => warnings.push(m));
    } finally {
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'appendonly', 'yes');
      admin.disconnect();
    }
    expect(warnings.join('\n')).to.match(/maxmemory-policy allkeys-lru[\s\S]*appendonly no/);
    expect(warnings.join('\n')).to.not.include('pr1vate');
  });

  it('enqueues a study once: submitting it again adds no job', async () => {
    const preset = presetFile();
    const out = tmp('tricks-study-');
    const specs = await planSweep({ preset, grid: parseGrid('{"optimizer.lr":[0.05,0.1]}'), seeds: 2, overrides: {}, out });
    const logger = new MemoryLogger();
    const target = parseQueueUrl(redis.url, {});
    const queue = new Queue(QUEUE_NAME, { connection: target.connection });
    try {
      await submitStudy(specs, { queue: redis.url, out, logger, kind: 'sweep', wait: false });
      expect(await queue.getJobCounts('waiting')).to.deep.equal({ waiting: 4 });
      await submitStudy(specs, { queue: redis.url, out, logger, kind: 'sweep', wait: false });
      expect(await queue.getJobCounts('waiting')).to.deep.equal({ waiting: 4 });
      expect(logger.lines.join('\n')).to.match(/4 run\(s\) enqueued[\s\S]*0 run\(s\) enqueued, 4 already queued/);
      const job = (await queue.getJobs(['waiting']))[0];
      expect(job.data.spec.out.startsWith(out)).to.equal(true);
      expect(job.data.config.optimizer.lr).to.be.oneOf([0.05, 0.1]);
      expect(job.opts.attempts).to.equal(3);
      const everything =
        logger.lines.join('\n') + JSON.stringify(await queue.getJobs(['waiting'])) + readFileSync(join(out, 'study.json'), 'utf8');
      expect(everything).to.not.include('pr1vate');
      expect(everything).to.not.include(encodeURIComponent(password));
      expect(everything).to.include('redis://:***@127.0.0.1');
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});

describe('distributed: a run that depends on another, with a real worker', function () {
  this.timeout(120000);
  let redis: LocalRedis;
  before(async () => {
    redis = await startLocalRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  it('holds the dependent run back without using an attempt, and fails it when its dependency fails', async () => {
    const preset = presetFile();
    const out = tmp('tricks-deps-');
    const bad = { data: 'fashion-mnist:/nonexistent/teacher-data' };
    const specs: RunSpec[] = [
      {
        id: 'teacher',
        preset,
        ladderStep: 0,
        stepName: 'teacher',
        trick: 'teacher',
        seed: 0,
        overrides: bad,
        out: join(out, 'teacher'),
        role: 'teacher',
      },
      {
        id: 'student',
        preset,
        ladderStep: 1,
        stepName: 'cos',
        trick: 'kd',
        seed: 0,
        overrides: {},
        out: join(out, 'student'),
        dependsOn: ['teacher'],
      },
    ];
    const prev = process.env.TRICKS_DEPENDENCY_POLL_MS;
    process.env.TRICKS_DEPENDENCY_POLL_MS = '300';
    const logger = new MemoryLogger();
    const w = await startWorker({ queue: redis.url, logger, lockDurationMs: 5000, stalledIntervalMs: 2000 });
    try {
      let err: Error | undefined;
      await submitStudy(specs, { queue: redis.url, out, logger, retries: 0, pollMs: 300 }).catch((e: Error) => (err = e));
      expect(err, logger.lines.join('\n')).to.be.instanceOf(TricksError);
      expect(err!.message).to.match(
        /2 of 2 runs did not finish: teacher \(failed: .*teacher-data does not exist.*\); student \(failed: depends on teacher, which failed\)/,
      );
      // The student never started: its job only waited in the delayed set.
      expect(readAttempts(join(out, 'student'))).to.deep.equal([]);
      expect(readAttempts(join(out, 'teacher')).map((e) => e.event)).to.deep.equal(['start', 'error']);
      const report = JSON.parse(readFileSync(join(out, 'queue.json'), 'utf8')) as {
        runs: { id: string; state: string; attempts: number }[];
      };
      expect(report.runs.map((r) => [r.id, r.state, r.attempts])).to.deep.equal([
        ['teacher', 'failed', 1],
        ['student', 'failed', 0],
      ]);
    } finally {
      await w.stop();
      if (prev === undefined) delete process.env.TRICKS_DEPENDENCY_POLL_MS;
      else process.env.TRICKS_DEPENDENCY_POLL_MS = prev;
      const q = new Queue(QUEUE_NAME, { connection: parseQueueUrl(redis.url).connection });
      await q.obliterate({ force: true });
      await q.close();
    }
  });
});

describe('distributed: rediss:// (TLS) against a real redis-server', function () {
  this.timeout(60000);
  const password = 'tls-pa55word';
  let redis: LocalRedis | undefined;
  let ca = '';
  before(async function () {
    const dir = tmp('tricks-tls-');
    const ssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    try {
      ssl([
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=tricks-test-ca',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
      ]);
      ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr']);
      writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
      ssl([
        'x509',
        '-req',
        '-in',
        'server.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '2',
        '-extfile',
        'ext.cnf',
        '-out',
        'server.pem',
      ]);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') this.skip(); // no openssl binary on this machine
      throw e;
    }
    ca = join(dir, 'ca.pem');
    redis = await startLocalRedis({ password, tls: { cert: join(dir, 'server.pem'), key: join(dir, 'server.key'), ca } });
  });
  after(async () => {
    await redis?.stop();
  });

  it('enqueues over TLS with the CA from TRICKS_REDIS_CA, and refuses an unknown CA with a clear error', async () => {
    expect(redis!.url).to.match(/^rediss:\/\//);
    const untrusted = parseQueueUrl(redis!.url, {});
    let err: Error | undefined;
    await checkRedis(untrusted, () => {}).catch((e: Error) => (err = e));
    expect(err?.message, err?.message).to.match(
      /cannot reach Redis at rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+: .*(self[- ]signed|certificate|issuer)/i,
    );
    expect(err?.message).to.not.include(password);

    const prev = process.env.TRICKS_REDIS_CA;
    process.env.TRICKS_REDIS_CA = ca;
    const out = tmp('tricks-tls-study-');
    const queue = new Queue(QUEUE_NAME, { connection: parseQueueUrl(redis!.url).connection });
    try {
      const specs = await planSweep({ preset: presetFile(), grid: parseGrid('{"optimizer.lr":[0.05]}'), seeds: 1, overrides: {}, out });
      const logger = new MemoryLogger();
      await submitStudy(specs, { queue: redis!.url, out, logger, wait: false });
      expect(await queue.getJobCounts('waiting')).to.deep.equal({ waiting: 1 });
      expect(logger.lines.join('\n')).to.match(/queue rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+: 1 run\(s\) enqueued/);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      if (prev === undefined) delete process.env.TRICKS_REDIS_CA;
      else process.env.TRICKS_REDIS_CA = prev;
    }
  });
});
