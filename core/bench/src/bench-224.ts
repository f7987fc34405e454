// The 224-px section of `npm run bench` (issue 15): zoo models at ImageNet size, 1000 classes, training
// (SGD momentum steps) and inference img/s of `tricks bench` on wasm, and PyTorch CPU (torch_zoo_224.py,
// 2 threads) at the same batch, model by model in one run. `tricks bench` plans micro-batches as `tricks train`
// does when a step would not fit the 32-bit wasm heap (the row says how many). A batch that still crashes is
// reported as "crash" and the next smaller one (halved) is tried, so the row shows the largest that ran.
//   node core/bench/dist/src/bench-224.js [--start resnet18=16,...] [--no-write]
// --start: the first batch to try per model (skips sizes known to crash); the target batch stays in the table.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const PYTHON = process.env.TORCH_PYTHON ?? '/usr/bin/python3';
const TORCH = join(root, 'core', 'bench', 'src', 'torch_zoo_224.py');
const CLI = join(root, 'core', 'cli', 'bin', 'tricks.js');
/** [tricks zoo name, torchvision name, target batch] */
const MODELS: Array<[string, string, number]> = [
  ['resnet18', 'resnet18', 64],
  ['mobilenetv3-small', 'mobilenet_v3_small', 64],
  ['efficientnet-b0', 'efficientnet_b0', 32],
  ['resnet50', 'resnet50', 32],
];
const argOf = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const start = new Map(
  (argOf('--start') ?? '')
    .split(',')
    .filter(Boolean)
    .map((s) => [s.split('=')[0]!, Number(s.split('=')[1])]),
);
const rates = (out: string): number[] => [...out.matchAll(/([0-9.]+) img\/s/g)].map((m) => Number(m[1]));

interface Row {
  model: string;
  target: number;
  batch: number;
  crashed: number[];
  microBatches?: number;
  tricks?: { train: number; infer: number };
  torch?: { train: number; infer: number };
}
const rows: Row[] = [];
for (const [model, torchName, target] of MODELS) {
  const row: Row = { model, target, batch: 0, crashed: [] };
  for (let b = start.get(model) ?? target; b >= 1; b = Math.floor(b / 2)) {
    const r = spawnSync(
      process.execPath,
      [
        CLI,
        'bench',
        '--model',
        model,
        '--batch-size',
        String(b),
        '--input',
        '224',
        '--classes',
        '1000',
        '--steps',
        '2',
        '--warmup',
        '1',
        '--json',
      ],
      { encoding: 'utf8', cwd: root, maxBuffer: 1 << 24 },
    );
    const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('{'));
    if (r.status !== 0 || !line) {
      row.crashed.push(b);
      const lines = (r.stderr ?? '').trim().split('\n');
      console.log(`${model} batch ${b}: crash (${lines.find((l) => /Error|Aborted|out of memory|out of bounds/i.test(l)) ?? lines.pop()})`);
      continue;
    }
    const j = JSON.parse(line) as { trainImagesPerSec: number; inferImagesPerSec: number; microBatches?: number };
    row.batch = b;
    row.microBatches = j.microBatches;
    row.tricks = { train: j.trainImagesPerSec, infer: j.inferImagesPerSec };
    break;
  }
  if (row.batch > 0 && existsSync(TORCH)) {
    const t = spawnSync(PYTHON, [TORCH, torchName, String(row.batch), '2'], { encoding: 'utf8' });
    const [train, infer] = rates(t.stdout ?? '');
    if (train !== undefined && infer !== undefined) row.torch = { train, infer };
  }
  const f = (v?: number) => (v === undefined ? '-' : v.toFixed(1));
  console.log(
    `${model} batch ${row.batch || '-'} (target ${target}): tricks train ${f(row.tricks?.train)} infer ${f(row.tricks?.infer)}; ` +
      `PyTorch train ${f(row.torch?.train)} infer ${f(row.torch?.infer)}`,
  );
  rows.push(row);
}
if (!process.argv.includes('--no-write')) writeTable(rows);

function writeTable(rows: Row[]): void {
  const file = join(root, 'docs', 'benchmarks.md');
  const begin = '<!-- bench:zoo224 begin (written by npm run bench) -->',
    end = '<!-- bench:zoo224 end -->';
  const f = (v?: number) => (v === undefined ? '-' : v.toFixed(1));
  const x = (a?: number, b?: number) => (a === undefined || b === undefined ? '-' : `${(a / b).toFixed(2)}x`);
  const table = [
    begin,
    `224x224x3, 1000 classes, SGD momentum 0.9 + weight decay 5e-4, label smoothing 0.1 (PyTorch: none), wasm with ${cpus().length} kernel threads; PyTorch CPU 2 threads;`,
    `${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}, load average at the end ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}. All rows from one run, each model's tricks and PyTorch measurements back to back, at the same batch.`,
    '',
    '| model | target batch | batch run | tricks train img/s | PyTorch train | ratio | tricks inference img/s | PyTorch inference | ratio |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.model} | ${r.target} | ${r.batch || '-'}${(r.microBatches ?? 1) > 1 ? ` as ${r.microBatches} micro-batches` : ''}${r.crashed.length ? ` (crash at ${r.crashed.join(', ')})` : ''} | ${f(r.tricks?.train)} | ${f(r.torch?.train)} | ${x(r.tricks?.train, r.torch?.train)} | ${f(r.tricks?.infer)} | ${f(r.torch?.infer)} | ${x(r.tricks?.infer, r.torch?.infer)} |`,
    ),
    '',
    'Commands: `npx tricks bench --model M --batch-size B --input 224 --classes 1000 --steps 2 --warmup 1 --json` and ' +
      '`/usr/bin/python3 core/bench/src/torch_zoo_224.py TORCHVISION_NAME B 2`; `node core/bench/dist/src/bench-224.js` runs them all.',
    end,
  ].join('\n');
  let doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\n';
  const i = doc.indexOf(begin),
    j = doc.indexOf(end);
  doc = i >= 0 && j > i ? doc.slice(0, i) + table + doc.slice(j + end.length) : doc.trimEnd() + '\n\n' + table + '\n';
  writeFileSync(file + '.tmp', doc);
  renameSync(file + '.tmp', file);
  console.log(`wrote ${file}`);
}
