// npm run bench: ResNet-18 (CIFAR stem, 100 classes) training and inference img/s at batch 64 on
// our wasm backend, the stock wasm backend, the cpu backend and (inference) onnxruntime-node, against the PyTorch CPU reference
// measured in the same run. Prints ratios and refreshes the table in docs/benchmarks.md.
//
//   node scripts/bench.mjs [--only torch,wasm,wasm1,wasm2,stock,cpu,onnx] [--batch-size 64] [--no-write]
// Each backend runs in its own process (kernel registrations are global), one after another.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const TORCH_SCRIPT = process.env.TORCH_BENCH ?? '/work/shared/bench/torch_resnet18_cifar.py';
const TORCH_PYTHON = process.env.TORCH_PYTHON ?? '/usr/bin/python3';

if (process.argv[2] === '--child') {
  await child(JSON.parse(process.argv[3]));
  process.exit(0);
}

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const only = arg('--only', 'torch,wasm,wasm1,wasm2,stock,cpu,onnx').split(',');
const cores = cpus().length;
const batch = Number(arg('--batch-size', '64'));
const CPU_BATCH = 8; // the cpu backend needs ~30 s per image batch of 8: it runs a smaller batch

const rows = [];
if (only.includes('torch')) rows.push(torch());
const runs = {
  wasm: { label: `tricks wasm (training kernels), ${cores} kernel threads (the default)`, backend: 'wasm', kernels: true, batch },
  wasm1: { label: 'tricks wasm (training kernels), 1 thread', backend: 'wasm', kernels: true, batch, threads: 1 },
  wasm2: { label: 'tricks wasm, DataParallel 2 workers x 1 thread', backend: 'wasm', kernels: true, batch, workers: 2 },
  stock: { label: 'stock tfjs-backend-wasm 4.22, 1 thread', backend: 'wasm', kernels: false, batch },
  cpu: { label: `tfjs cpu backend (batch ${CPU_BATCH}, 1 step)`, backend: 'cpu', kernels: false, batch: CPU_BATCH, steps: 1, warmup: 0 },
  onnx: {
    label: `onnxruntime-node, the ONNX export, ${cores} threads (inference only)`,
    backend: 'cpu',
    kernels: false,
    batch,
    onnx: true,
  },
};
for (const [name, cfg] of Object.entries(runs)) if (only.includes(name)) rows.push(runChild(name, cfg));

const ref = rows.find((r) => r.name === 'torch');
const ratio = (v, r) => (Number.isFinite(v) && r && Number.isFinite(r) ? (v / r).toFixed(2) + 'x' : '-');
const fmt = (v) => (Number.isFinite(v) ? (v < 1 ? v.toPrecision(2) : v.toFixed(1)) : '-');
console.log(`\nResNet-18 CIFAR, batch ${batch}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'})`);
for (const r of rows) {
  console.log(
    `${r.label.padEnd(58)} train ${fmt(r.train).padStart(6)} img/s (${ratio(r.train, ref?.train)})` +
      `  infer ${fmt(r.infer).padStart(6)} img/s (${ratio(r.infer, ref?.infer)})${r.note ? '  ' + r.note : ''}`,
  );
}
if (!process.argv.includes('--no-write')) writeTable(rows, ref);

// The other measured parts, each a script of its own: framework overhead, the zoo models at 224 px
// against PyTorch, then the data pipeline against torchvision's DataLoader (it refreshes its own section of docs/benchmarks.md).
if (!process.argv.includes('--only')) {
  for (const [label, args] of [
    ['framework overhead', [join(root, 'scripts', 'bench-overhead.mjs')]],
    [
      'zoo models at 224 px vs PyTorch',
      [join(root, 'core', 'bench', 'dist', 'src', 'bench-224.js'), ...(process.argv.includes('--no-write') ? ['--no-write'] : [])],
    ],
    [
      'data pipeline vs torchvision',
      [join(root, 'core', 'bench', 'dist', 'src', 'pipeline.js'), ...(process.argv.includes('--no-write') ? ['--no-write'] : [])],
    ],
  ]) {
    console.log(`\n== ${label}`);
    spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
  }
}

function torch() {
  const row = { name: 'torch', label: 'PyTorch CPU, 2 threads', command: `${TORCH_PYTHON} ${TORCH_SCRIPT} 2` };
  if (!existsSync(TORCH_SCRIPT))
    return { ...row, train: NaN, infer: NaN, note: `reference script ${TORCH_SCRIPT} not found (set TORCH_BENCH)` };
  const r = spawnSync(TORCH_PYTHON, [TORCH_SCRIPT, '2'], { encoding: 'utf8' });
  const rates = [...(r.stdout ?? '').matchAll(/([0-9.]+) img\/s/g)].map((m) => Number(m[1]));
  const version = /torch (\S+)/.exec(r.stdout ?? '')?.[1];
  if (rates.length < 2)
    return { ...row, train: NaN, infer: NaN, note: `failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}` };
  return { ...row, label: `PyTorch ${version ?? ''} CPU, 2 threads`, train: rates[0], infer: rates[1] };
}

function runChild(name, cfg) {
  const command = `node scripts/bench.mjs --only ${name}`;
  const env = cfg.threads ? { ...process.env, TRICKS_WASM_THREADS: String(cfg.threads) } : process.env;
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify(cfg)], {
    encoding: 'utf8',
    cwd: root,
    maxBuffer: 1 << 24,
    env,
  });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('RESULT '));
  if (!line)
    return {
      name,
      label: cfg.label,
      command,
      train: NaN,
      infer: NaN,
      note: `failed: ${lastLines(r.stderr, 3) || `exit ${r.status ?? r.signal}`}`,
    };
  return { name, label: cfg.label, command, ...JSON.parse(line.slice(7)) };
}

/** The last n meaningful lines of a child's stderr (without tfjs's install-tfjs-node banner). */
function lastLines(text, n) {
  return (text ?? '')
    .split('\n')
    .filter((l) => l.trim() && !/^=+$|looks like you are running TensorFlow\.js/.test(l.trim()))
    .slice(-n)
    .join(' ');
}

async function child(cfg) {
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-cpu');
  await import('@tensorflow/tfjs-backend-wasm');
  const pkg = (name) => join(root, 'core', name, 'dist', 'src');
  if (cfg.kernels) (await import(join(pkg('backend-wasm'), 'kernels.js'))).registerWasmTrainingKernels();
  await tf.setBackend(cfg.backend);
  const { benchTrain, benchDataParallel } = await import(join(pkg('lab'), 'bench.js'));
  if (cfg.workers) {
    const r = await benchDataParallel({
      model: { module: join(pkg('bench'), 'resnet18.js'), export: 'resnet18Cifar' },
      workers: cfg.workers,
      batchSize: cfg.batch,
      backend: cfg.backend,
    });
    console.log('RESULT ' + JSON.stringify({ train: r.trainImagesPerSec, infer: r.inferImagesPerSec }));
    return;
  }
  const { resnet18Cifar } = await import(join(pkg('bench'), 'resnet18.js'));
  const model = resnet18Cifar();
  if (cfg.onnx) {
    // tricks export --format onnx of the same model, run by onnxruntime-node (tricks eval/predict/bench use it when installed)
    const { benchOnnxInference } = await import(join(pkg('export'), 'index.js'));
    const r = await benchOnnxInference(model, { batchSize: cfg.batch, threads: cpus().length });
    console.log('RESULT ' + JSON.stringify({ train: NaN, infer: r.inferImagesPerSec }));
    return;
  }
  const opts = { model, batchSize: cfg.batch, steps: cfg.steps, warmup: cfg.warmup };
  let note;
  let result;
  try {
    result = await benchTrain(opts);
  } catch (e) {
    note = `cannot train: ${String(e.message).split('\n')[0]}`;
    result = await benchTrain({ ...opts, train: false });
  }
  console.log('RESULT ' + JSON.stringify({ train: result.trainImagesPerSec, infer: result.inferImagesPerSec, note }));
}

function writeTable(rows, ref) {
  const file = join(root, 'docs', 'benchmarks.md');
  const begin = '<!-- bench:resnet18 begin (written by npm run bench) -->',
    end = '<!-- bench:resnet18 end -->';
  const date = new Date().toISOString().slice(0, 10);
  const table = [
    begin,
    `ResNet-18, CIFAR stem, 100 classes, batch ${batch}, SGD momentum 0.9 + weight decay 5e-4, label smoothing 0.1;`,
    `${date}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}, load average at the end ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}.`,
    'All rows from one run of `npm run bench`, one backend at a time. Timings on a shared machine are noisy: compare ratios within a run.',
    '',
    '| backend | train img/s | vs PyTorch | inference img/s | vs PyTorch | command |',
    '|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.label}${r.note ? ` (${r.note})` : ''} | ${fmt(r.train)} | ${ratio(r.train, ref?.train)} | ${fmt(r.infer)} | ${ratio(r.infer, ref?.infer)} | \`${r.command}\` |`,
    ),
    end,
  ].join('\n');
  let doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\n';
  const i = doc.indexOf(begin),
    j = doc.indexOf(end);
  doc = i >= 0 && j > i ? doc.slice(0, i) + table + doc.slice(j + end.length) : doc.trimEnd() + '\n\n' + table + '\n';
  writeFileSync(file + '.tmp', doc);
  renameSync(file + '.tmp', file);
  console.log(`\nwrote ${file}`);
}
