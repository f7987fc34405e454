// npm run parity -- --preset fashion-mnist [--model resnet20] [--rungs 1-3] [--seeds 3 | --seeds 10-19 --twin-only] [--epochs 3] [--limit-train 4000] [--batch-size 32]
//                   [--out runs/parity-fashion-mnist] [--tricks-from DIR] [--twin bnMomentum=0.9,init=torch]
//
// The parity harness: a preset's ablation ladder trained by `tricks ablate` and by its PyTorch twin
// (core/lab/py/parity_twin.py, run with TORCH_PYTHON, default /usr/bin/python3), with the same recipe read from the
// resolved tricks configs: the same training subset and per-epoch order, model definition and initializers,
// optimizer, schedule, batch, epochs and augmentation (torchvision's ops). Prints the `tricks ablate` table of each
// and the two side by side, and writes OUT/parity.md and OUT/parity.json.
//   --tricks-from DIR   reuse a finished `tricks ablate --out DIR` (its ablation.json) instead of running tricks
//   --twin-only         run only the twin (no tricks table)
//   resumable: the twin's finished runs are kept in OUT/twin-runs.jsonl; a second call trains only the missing ones
//   --twin k=v,...      the twin's departures from the tricks model's options (small-cnn: init torch|glorot,
//                       bnMomentum 0.9, bnEpsilon 1e-5); for experiments only, the side-by-side table then compares
//                       two different recipes
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng, TricksError, epochRng, resolveConfig } from '@tricks/core';
import { ablationMarkdown, selectRungs, summarizeRuns, loadLadder, planAblation } from '@tricks/lab';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// a user's mistake (unknown preset, bad --rungs) is one message, not a stack trace
process.on('uncaughtException', (e) => {
  if (e instanceof TricksError) {
    console.error(`parity: ${e.message}`);
    process.exit(1);
  }
  throw e;
});
const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const fail = (msg, hint) => {
  console.error(`parity: ${msg}${hint ? `\n  hint: ${hint}` : ''}`);
  process.exit(1);
};
const preset = arg('--preset');
if (!preset) fail('--preset is required', 'npm run parity -- --preset fashion-mnist');
// --seeds N: seeds 0..N-1; --seeds A-B: seeds A..B (the twin only: more seeds for a rung run before)
const seedsArg = String(arg('--seeds', '3'));
const seedRange = /^(\d+)-(\d+)$/.exec(seedsArg);
const seeds = seedRange ? Number(seedRange[2]) - Number(seedRange[1]) + 1 : Number(seedsArg);
const epochs = Number(arg('--epochs', '3'));
const limitTrain = Number(arg('--limit-train', '4000'));
const batchSize = Number(arg('--batch-size', '32'));
const data = arg('--data', 'fashion-mnist');
const out = resolve(arg('--out', join('runs', `parity-${preset}`)));
const tricksFrom = arg('--tricks-from');
const twinOnly = args.includes('--twin-only');
const python = process.env.TORCH_PYTHON ?? '/usr/bin/python3';
const twin = Object.fromEntries(
  (arg('--twin', '') || '')
    .split(',')
    .filter(Boolean)
    .map((kv) => {
      const [k, v] = kv.split('=');
      return [k, Number.isFinite(Number(v)) ? Number(v) : v];
    }),
);
for (const [k, v] of [
  ['--seeds', seeds],
  ['--epochs', epochs],
  ['--limit-train', limitTrain],
  ['--batch-size', batchSize],
])
  if (!Number.isInteger(v) || v < 1) fail(`${k} must be an integer >= 1, got ${v}`);
if (!/^fashion-mnist(:|$)/.test(data))
  fail(`--data ${data}: the twin reads Fashion-MNIST IDX files only`, 'use --data fashion-mnist[:DIR]');
const dataDir = data.includes(':') ? data.slice(data.indexOf(':') + 1) : '/usr/share/datasets/fashion-mnist';

const { ladder } = await loadLadder(preset, root);
const rungSet = selectRungs(
  args.flatMap((a, i) => (args[i - 1] === '--rungs' ? [a] : [])),
  ladder.map((s) => s.name),
);
const rungIdx = ladder.map((_, i) => i).filter((i) => rungSet.size === 0 || rungSet.has(i));
const model = arg('--model');
const overrides = { data, epochs, batchSize, limit: { train: limitTrain }, ...(model ? { model } : {}) };
mkdirSync(out, { recursive: true });

// 1. tricks: `tricks ablate` (or a finished one)
let tricksRuns = [];
if (seedRange && !twinOnly) fail(`--seeds ${seedsArg}: a range of seeds is for the twin only`, 'add --twin-only');
if (!twinOnly) {
  const dir = tricksFrom ? resolve(tricksFrom) : join(out, 'tricks');
  if (!tricksFrom) {
    const rungFlag = rungIdx.map((i) => i + 1).join(',');
    const a = ['core/cli/bin/tricks.js', 'ablate', '--preset', preset, '--data', data, '--seeds', String(seeds)];
    a.push('--epochs', String(epochs), '--limit-train', String(limitTrain), '--batch-size', String(batchSize));
    if (model) a.push('--model', model);
    a.push('--backend', arg('--backend', 'wasm'), '--jobs', arg('--jobs', '1'), '--rungs', rungFlag, '--no-interpret', '--out', dir);
    console.log(`parity: node ${a.join(' ')}`);
    const r = spawnSync(process.execPath, a, { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) fail(`tricks ablate exited with ${r.status}`);
  }
  const file = join(dir, 'ablation.json');
  if (!existsSync(file)) fail(`${file} does not exist`, 'give --tricks-from the --out folder of a finished `tricks ablate`');
  const abl = JSON.parse(readFileSync(file, 'utf8'));
  const curves = new Map((abl.curves ?? []).map((c) => [c.id, c.epochs]));
  tricksRuns = abl.runs
    .filter((r) => r.role !== 'teacher' && rungIdx.includes(r.ladderStep))
    .map((r) => ({ ...r, epochs: curves.get(r.id) ?? [] }));
}

// 2. the twin's job: resolved configs, tricks' subset and per-epoch orders (trainer.limit, ShuffleSampler)
const labels = gunzipSync(readFileSync(join(dataDir, 'train-labels-idx1-ubyte.gz')));
const trainLength = labels.readUInt32BE(4);
const subsetOf = (limit) => (limit && limit < trainLength ? [...new Rng(1).permutation(trainLength).slice(0, limit).sort()] : null);
const ordersOf = (length, nEpochs, seedList) =>
  Object.fromEntries(seedList.map((s) => [s, Array.from({ length: nEpochs }, (_, e) => [...epochRng(s, e).permutation(length)])]));
const trainIndices = subsetOf(limitTrain);
const subsetLength = trainIndices ? trainIndices.length : trainLength;
const seedList = Array.from({ length: seeds }, (_, k) => k + (seedRange ? Number(seedRange[1]) : 0));
const epochOrders = ordersOf(subsetLength, epochs, seedList);
const rungs = [];
// what the twin reads (and its cache key): not the out folder (a timestamp) nor kd's teacher folder (it trains its own)
const plain = (config) => ({
  ...config,
  out: undefined,
  plugins: config.plugins.map(({ name, options }) => ({ name, options: name === 'kd' ? { ...options, teacher: undefined } : options })),
});
// the runs `tricks ablate` would plan (core/lab/src/ablate/plan.ts): a kd rung's overrides carry its teacher's folder,
// and the teacher run (the recipe of the rung before kd, the teacher's model, the first seed) is what the twin trains
// once, in torch, before it distils
const plan = await planAblation({ preset, seeds: 1, overrides, out: join(out, 'tricks'), cwd: root });
const configOf = async ({ seed: _, ...o }, ladderStep) => plain((await resolveConfig({ ...o, preset }, { cwd: root, ladderStep })).config);
const teacherSpec = plan.find((r) => r.role === 'teacher');
const teacher = teacherSpec && { config: await configOf(teacherSpec.overrides, teacherSpec.ladderStep), seed: teacherSpec.seed };
// a kd rung's teacherSettings may give the teacher other images or epochs than the students: its own subset and orders
let teacherData;
if (teacher && (teacher.config.limit.train !== limitTrain || teacher.config.epochs !== epochs)) {
  const idx = subsetOf(teacher.config.limit.train);
  teacherData = {
    trainIndices: idx ?? Array.from({ length: trainLength }, (_, i) => i),
    epochOrders: ordersOf(idx ? idx.length : trainLength, teacher.config.epochs, [teacher.seed]),
  };
}
for (const i of rungIdx) {
  const spec = plan.find((r) => r.role !== 'teacher' && r.ladderStep === i);
  const config = await configOf(spec.overrides, i);
  const trick = tricksRuns.find((r) => r.ladderStep === i)?.trick ?? ladder[i].name;
  const kd = config.plugins.some((p) => p.name === 'kd');
  rungs.push({ ladderStep: i, stepName: ladder[i].name, trick, config, ...(kd && teacher ? { teacher } : {}) });
}
// resumable: each finished twin run is a line of OUT/twin-runs.jsonl, keyed by its rung's config, the seed and the
// data subset; a second call trains only the runs not there yet
const runsFile = join(out, 'twin-runs.jsonl');
const keyOf = (rung, seed) =>
  createHash('sha256')
    .update(JSON.stringify({ config: rung.config, teacher: rung.teacher, seed, twin, limitTrain, dataDir }))
    .digest('hex')
    .slice(0, 16);
const cached = existsSync(runsFile) ? readFileSync(runsFile, 'utf8') : '';
if (cached && !cached.endsWith('\n')) appendFileSync(runsFile, '\n'); // new runs start on a line of their own
const done = new Map(
  cached
    .split('\n')
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return []; // a line cut short by a kill: that run trains again
      }
    })
    .map((r) => [r.key, r]),
);
for (const rung of rungs) rung.seeds = seedList.filter((s) => !done.has(keyOf(rung, s)));
const job = {
  dataDir,
  trainIndices: trainIndices ?? Array.from({ length: trainLength }, (_, i) => i),
  epochOrders,
  ...(teacherData ? { teacherData } : {}),
  rungs,
  seeds: seedList,
  twin,
  threads: 1,
};

// 3. the twin, one JSON line per run
const todo = rungs.reduce((n, r) => n + r.seeds.length, 0);
console.log(
  `parity: ${python} core/lab/py/parity_twin.py (${rungs.length} rungs x ${seeds} seeds: ${todo} to train, ${rungs.length * seeds - todo} done in ${runsFile})`,
);
// a cached run takes this call's trick label (a --twin-only call labels rungs by their step names)
const twinRuns = rungs.flatMap((r) =>
  seedList
    .map((s) => done.get(keyOf(r, s)))
    .filter(Boolean)
    .map((rec) => ({ ...rec, trick: r.trick })),
);
const skipped = [];
let twinTeacher;
if (todo > 0)
  await new Promise((ok, ko) => {
    const p = spawn(python, [join(root, 'core/lab/py/parity_twin.py')], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
    let buf = '';
    p.stdout.on('data', (d) => {
      buf += d;
      let k;
      while ((k = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, k);
        buf = buf.slice(k + 1);
        if (!line.trim()) continue;
        const rec = JSON.parse(line);
        if (rec.error) return ko(new Error(rec.error));
        if (rec.teacher !== undefined) {
          console.log(`parity: twin teacher: top-1 ${(100 * rec.teacher).toFixed(2)} % in ${rec.seconds.toFixed(0)} s`);
          twinTeacher = rec;
          continue;
        }
        if (rec.skip) skipped.push(rec);
        else {
          const rung = rungs.find((r) => r.ladderStep === rec.ladderStep);
          const withKey = { ...rec, key: keyOf(rung, rec.seed) };
          appendFileSync(runsFile, `${JSON.stringify(withKey)}\n`);
          twinRuns.push(withKey);
        }
        console.log(
          rec.skip
            ? `parity: twin skips ${rec.stepName} seed ${rec.seed}: ${rec.skip}`
            : `parity: twin ${rec.stepName} seed ${rec.seed}: top-1 ${(100 * rec.top1).toFixed(2)} % in ${rec.seconds.toFixed(0)} s`,
        );
      }
    });
    p.on('error', ko);
    p.on('close', (code) => (code === 0 ? ok() : ko(new Error(`the twin exited with ${code}`))));
    p.stdin.end(JSON.stringify(job));
  }).catch((e) => fail(e.message, `run ${python} with torch and torchvision installed, or set TORCH_PYTHON`));

// 4. the tables
const tSum = tricksRuns.length ? summarizeRuns(tricksRuns) : undefined;
const pSum = summarizeRuns(twinRuns);
const f = (x) => (100 * x).toFixed(2);
const side = [
  '| # | step | trick added | tricks top-1 (%) | PyTorch twin top-1 (%) | tricks − twin (points) | verdict | paired by seed |',
  '|---|---|---|---|---|---|---|---|',
];
// a seed gives both frameworks the same data order (tricks' ShuffleSampler), not the same initial weights: the
// per-seed differences are a second, paired estimate (mean ± its standard error)
const paired = (i) => {
  const t = new Map(tricksRuns.filter((r) => r.ladderStep === i).map((r) => [r.seed, r.top1]));
  const d = twinRuns.filter((r) => r.ladderStep === i && t.has(r.seed)).map((r) => t.get(r.seed) - r.top1);
  if (d.length < 2) return '';
  const m = d.reduce((a, v) => a + v, 0) / d.length;
  const se = Math.sqrt(d.reduce((a, v) => a + (v - m) ** 2, 0) / (d.length - 1) / d.length);
  return `${m >= 0 ? '+' : '−'}${f(Math.abs(m))} ± ${f(se)} (${(Math.abs(m) / se).toFixed(1)} SE)`;
};
for (const i of rungIdx) {
  const a = tSum?.steps.find((s) => s.ladderStep === i);
  const b = pSum.steps.find((s) => s.ladderStep === i);
  let d = '',
    v = '';
  if (a && b) {
    const diff = a.mean - b.mean;
    const se = Math.sqrt(a.std ** 2 / a.n + b.std ** 2 / b.n);
    d = `${diff >= 0 ? '+' : '−'}${f(Math.abs(diff))} ± ${f(se)}`;
    v = a.n < 2 || b.n < 2 ? 'one seed: no verdict' : Math.abs(diff) > 2 * se ? 'differ (> 2 SE)' : 'agree (≤ 2 SE)';
  }
  const cell = (s) => (s ? `${f(s.mean)} ± ${f(s.std)} (n ${s.n})` : 'no twin');
  side.push(
    `| ${i + 1} | ${ladder[i].name} | ${a?.trick ?? b?.trick ?? ''} | ${a ? cell(a) : '—'} | ${cell(b)} | ${d} | ${v} | ${paired(i)} |`,
  );
}
const cpu = spawnSync('lscpu', [], { encoding: 'utf8' }).stdout?.match(/Model name:\s*(.+)/)?.[1] ?? cpus()[0]?.model;
const twinNote = Object.keys(twin).length ? ` Twin departures: ${JSON.stringify(twin)}.` : '';
const md = [
  `# Parity: preset ${preset}, tricks against its PyTorch twin`,
  '',
  `Recipe: the preset${model ? ` with model ${model}` : ''}, ${epochs} epochs, batch ${batchSize}, ${limitTrain} training images (tricks' subset), the full test set; seeds ${seedList.join(', ')}; CPU: ${cpu}.${twinNote}`,
  '',
  ...side,
  '',
  ...(twinTeacher ? [`The twin's kd teacher (trained in torch in this call): top-1 ${(100 * twinTeacher.teacher).toFixed(2)} %.`, ''] : []),
  ...(tSum ? [ablationMarkdown(tSum, 'tricks ablate'), ''] : []),
  ablationMarkdown(pSum, 'PyTorch twin (core/lab/py/parity_twin.py)'),
].join('\n');
console.log(`\n${side.join('\n')}\n`);
const write = (file, text) => {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
};
write(join(out, 'parity.md'), md);
write(
  join(out, 'parity.json'),
  JSON.stringify(
    {
      preset,
      epochs,
      batchSize,
      limitTrain,
      seeds: seedList,
      twin,
      cpu,
      tricks: tricksRuns,
      torch: twinRuns,
      torchTeacher: twinTeacher,
      skipped,
    },
    null,
    1,
  ),
);
console.log(`parity: ${join(out, 'parity.md')}, ${join(out, 'parity.json')}`);
