/**
 * Benchmark of studies on the queue: the same ablation (a preset's ladder x seeds) run
 *   - locally, `tricks ablate --jobs 1` and `--jobs 2` (the peers),
 *   - on BullMQ with 1 and with 2 `tricks worker` processes on this machine,
 * each from a cold output directory, wall time from the coordinator's start to its exit (workers
 * are started and ready before, as they would be on their machines). Per run, the overhead is the
 * wall time per run minus the run's own training + evaluation seconds (RunRecord.seconds); for the
 * queue it also reads BullMQ's own timestamps: how long a job waited for an idle worker to take it.
 *
 *   node core/bench/dist/src/distributed-bench.js [--preset FILE] [--seeds 2] [--reps 2] [--only local1,local2,queue1,queue2] [--no-write]
 *
 * Prints a table and refreshes its section of docs/benchmarks.md. Repeats each mode --reps times
 * and keeps the fastest (the machine is shared and noisy).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { QUEUE_NAME, readAttempts, type RunJobData, startLocalRedis, type LocalRedis, parseQueueUrl } from '@tricks/distributed';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const tricks = join(root, 'core', 'cli', 'bin', 'tricks.js');
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const preset = resolve(arg('--preset', join(root, 'test', 'fixtures', 'distributed', 'tiny-ladder.mjs')));
const seeds = Number(arg('--seeds', '2'));
const reps = Number(arg('--reps', '2'));
const only = arg('--only', 'local1,local2,queue1,queue2').split(',');

interface Sample {
  mode: string;
  wall: number;
  runs: number;
  /** Sum of the runs' own seconds (training + evaluation). */
  runSeconds: number;
  /** Queue only: median seconds a job waited between an idle worker and its start. */
  pickup?: number;
  /** Queue only: median seconds from the job's start on a worker to runOne's start (resolve + child). */
  startup?: number;
}

function run(args: string[], logFile: string): Promise<number> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [tricks, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    p.stdout.on('data', (d) => (log += d));
    p.stderr.on('data', (d) => (log += d));
    p.on('exit', (code) => {
      writeFileSync(logFile, log);
      res(code ?? 1);
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};

function runSeconds(out: string): { runs: number; seconds: number } {
  const a = JSON.parse(readFileSync(join(out, 'ablation.json'), 'utf8')) as { runs: { seconds: number }[] };
  return { runs: a.runs.length, seconds: a.runs.reduce((s, r) => s + r.seconds, 0) };
}

async function local(jobs: number, dir: string): Promise<Sample> {
  const out = join(dir, `local${jobs}`);
  const t0 = performance.now();
  const code = await run(
    ['ablate', '--preset', preset, '--seeds', String(seeds), '--backend', 'wasm', '--jobs', String(jobs), '--out', out],
    `${out}.log`,
  );
  const wall = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`local ablate failed (${code}): ${readFileSync(`${out}.log`, 'utf8').slice(-2000)}`);
  const r = runSeconds(out);
  return { mode: `local${jobs}`, wall, runs: r.runs, runSeconds: r.seconds };
}

async function queued(workers: number, dir: string, redis: LocalRedis): Promise<Sample> {
  const out = join(dir, `queue${workers}`);
  const procs = Array.from({ length: workers }, (_, i) => {
    const log = join(dir, `worker${workers}-${i}.log`);
    const p = spawn(process.execPath, [tricks, 'worker', '--queue', redis.url, '--backend', 'wasm'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    p.stdout.on('data', (d) => (text += d));
    p.stderr.on('data', (d) => (text += d));
    p.on('exit', () => writeFileSync(log, text));
    return { p, ready: () => text.includes('waiting for jobs') };
  });
  try {
    const deadline = Date.now() + 60_000;
    while (!procs.every((w) => w.ready())) {
      if (Date.now() > deadline) throw new Error('workers did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    const t0 = performance.now();
    const code = await run(
      ['ablate', '--preset', preset, '--seeds', String(seeds), '--backend', 'wasm', '--out', out, '--queue', redis.url],
      `${out}.log`,
    );
    const wall = (performance.now() - t0) / 1000;
    if (code !== 0) throw new Error(`queued ablate failed (${code}): ${readFileSync(`${out}.log`, 'utf8').slice(-2000)}`);
    const r = runSeconds(out);
    // BullMQ's timestamps: when each job was added, taken (processedOn) and finished, per worker.
    const queue = new Queue<RunJobData>(QUEUE_NAME, { connection: parseQueueUrl(redis.url).connection });
    const jobs = (await queue.getJobs(['completed'])).filter((j) => j.data.study === out);
    await queue.close();
    const pickups: number[] = [];
    const startups: number[] = [];
    const byWorker = new Map<string, typeof jobs>();
    for (const j of jobs) byWorker.set(j.processedBy ?? '?', [...(byWorker.get(j.processedBy ?? '?') ?? []), j]);
    for (const list of byWorker.values()) {
      list.sort((a, b) => a.processedOn! - b.processedOn!);
      list.forEach((j, i) => pickups.push((j.processedOn! - Math.max(j.timestamp, i ? list[i - 1].finishedOn! : 0)) / 1000));
    }
    for (const j of jobs) {
      const start = readAttempts(j.data.spec.out).find((e) => e.event === 'start');
      if (start) startups.push((Date.parse(start.time) - j.processedOn!) / 1000);
    }
    return { mode: `queue${workers}`, wall, runs: r.runs, runSeconds: r.seconds, pickup: median(pickups), startup: median(startups) };
  } finally {
    for (const w of procs) w.p.kill('SIGTERM');
    await Promise.all(procs.map((w) => (w.p.exitCode !== null ? undefined : new Promise((r) => w.p.once('exit', r)))));
  }
}

const redis = await startLocalRedis();
const best = new Map<string, Sample>();
try {
  for (let rep = 0; rep < reps; rep++) {
    for (const mode of only) {
      const dir = mkdtempSync(join(tmpdir(), 'tricks-bench-dist-'));
      try {
        const s = mode.startsWith('local') ? await local(Number(mode.slice(5)), dir) : await queued(Number(mode.slice(5)), dir, redis);
        console.log(
          `rep ${rep + 1} ${mode}: ${s.wall.toFixed(1)} s wall for ${s.runs} runs (their own time ${s.runSeconds.toFixed(1)} s)` +
            (s.pickup !== undefined ? `; job pickup ${s.pickup.toFixed(3)} s, start ${s.startup!.toFixed(2)} s (medians)` : ''),
        );
        if (!best.has(mode) || s.wall < best.get(mode)!.wall) best.set(mode, s);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
} finally {
  await redis.stop();
}

const label: Record<string, string> = {
  local1: 'local, `tricks ablate --jobs 1`',
  local2: 'local, `tricks ablate --jobs 2`',
  queue1: 'BullMQ, 1 `tricks worker`',
  queue2: 'BullMQ, 2 `tricks worker`',
};
const l1 = best.get('local1');
const rows = only
  .filter((m) => best.has(m))
  .map((m) => {
    const s = best.get(m)!;
    const perRun = s.wall / s.runs;
    const par = m.endsWith('2') ? 2 : 1;
    // Overhead per run: wall time per run x parallelism minus the run's own seconds.
    const overhead = (s.wall * par - s.runSeconds) / s.runs;
    return `| ${label[m]} | ${s.wall.toFixed(1)} | ${l1 ? (l1.wall / s.wall).toFixed(2) + 'x' : '-'} | ${perRun.toFixed(1)} | ${(s.runSeconds / s.runs).toFixed(1)} | ${overhead.toFixed(1)} | ${s.pickup !== undefined ? `${s.pickup.toFixed(3)} / ${s.startup!.toFixed(2)}` : '-'} |`;
  });
const n = best.values().next().value?.runs ?? 0;
const begin = '<!-- bench:distributed begin (written by node core/bench/dist/src/distributed-bench.js) -->';
const end = '<!-- bench:distributed end -->';
const table = [
  begin,
  `Study: \`${preset.replace(root + '/', '')}\` (${n} runs: 3 ladder steps x ${seeds} seeds, width-8 small CNN, 256 digits, 5 epochs of 4 steps), wasm backend;`,
  `${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}, load average at the end ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}.`,
  `Fastest of ${reps} repetitions per row, all rows from one run of the script. Wall time from the coordinator's start to its exit (workers already running).`,
  '"Overhead per run": wall time x parallelism / runs, minus the runs\' own training + evaluation seconds. "Pickup / start": medians of the seconds',
  "a job waited for an idle worker (BullMQ processedOn minus the later of its enqueue time and that worker's previous finish), and from processedOn to the run's start in the sandboxed child.",
  '',
  "| mode | wall s | speed-up vs local --jobs 1 | wall s per run | run's own s | overhead per run s | pickup / start s |",
  '|---|---|---|---|---|---|---|',
  ...rows,
  end,
].join('\n');
console.log(`\n${table}`);
if (!process.argv.includes('--no-write')) {
  const file = join(root, 'docs', 'benchmarks.md');
  let doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\n';
  const i = doc.indexOf(begin),
    j = doc.indexOf(end);
  doc =
    i >= 0 && j > i
      ? doc.slice(0, i) + table + doc.slice(j + end.length)
      : `${doc.trimEnd()}\n\n## Distributed studies (BullMQ)\n\n${table}\n`;
  writeFileSync(`${file}.tmp`, doc);
  renameSync(`${file}.tmp`, file);
  console.log(`wrote ${file}`);
}
process.exit(0);
