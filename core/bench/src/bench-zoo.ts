// Benchmarks of the model zoo (not a test): `node core/bench/dist/src/bench-zoo.js [grouped|models] [--batch 8]`.
// grouped: the three GroupedConv2D implementations on ResNeXt-50 32x4d's 3x3 shapes, forward and
// forward+backward, on the wasm backend with the training kernels, against PyTorch's grouped conv (1 thread)
// measured in the same run, and against an ungrouped conv of the same width. Best of N repetitions.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '@tricks/backend-wasm';
import { groupedConv2d, type GroupedConvImpl } from '@tricks/models';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};

async function best(fn: () => tf.Tensor | tf.Tensor[], reps: number): Promise<number> {
  const run = async () => {
    const t = performance.now();
    const out = tf.tidy(fn);
    const list = Array.isArray(out) ? out : [out];
    await Promise.all(list.map((o) => o.data()));
    tf.dispose(list);
    return performance.now() - t;
  };
  await run();
  let b = Infinity;
  for (let i = 0; i < reps; i++) b = Math.min(b, await run());
  return b;
}

export async function benchGrouped(batch: number, reps: number): Promise<string> {
  registerWasmTrainingKernels();
  await tf.setBackend('wasm');
  const shapes: [string, number, number][] = [
    ['s1', 56, 128],
    ['s2', 28, 256],
    ['s3', 14, 512],
    ['s4', 7, 1024],
  ];
  const torchPy = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'grouped_conv_torch.py');
  const t = spawnSync(process.env.TORCH_PYTHON ?? '/usr/bin/python3', [torchPy, String(batch), String(reps)], { encoding: 'utf8' });
  const torch = t.status === 0 ? (JSON.parse(t.stdout) as Record<string, { fwd: number; fwdbwd: number }>) : undefined;
  const rows: string[] = [];
  for (const [name, hw, c] of shapes) {
    const x = tf.randomNormal([batch, hw, hw, c]) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, c, c / 32]) as tf.Tensor4D;
    const full = tf.randomNormal([3, 3, c, c]) as tf.Tensor4D;
    const macs = batch * hw * hw * c * 9 * (c / 32);
    const cells: string[] = [];
    for (const impl of ['depthwise', 'split', 'dense'] as GroupedConvImpl[]) {
      const f = await best(() => groupedConv2d(x, w, 32, 1, impl), reps);
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(groupedConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 32, 1, impl)));
      const fb = await best(() => g([x, w]), reps);
      cells.push(`${f.toFixed(1)} / ${fb.toFixed(1)}`);
    }
    const uf = await best(() => tf.conv2d(x, full, 1, 'same'), reps);
    const ug = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')));
    const ufb = await best(() => ug([x, full]), reps);
    const p = torch?.[name];
    rows.push(
      `| ${name} ${hw}x${hw}x${c} | ${(macs / 1e6).toFixed(0)} | ${cells.join(' | ')} | ${uf.toFixed(1)} / ${ufb.toFixed(1)} | ${p ? `${p.fwd.toFixed(1)} / ${p.fwdbwd.toFixed(1)}` : 'n/a'} |`,
    );
    tf.dispose([x, w, full]);
  }
  return [
    `ResNeXt-50 32x4d grouped 3x3 convs, batch ${batch}, stride 1: milliseconds forward / forward+backward, best of ${reps}`,
    '',
    '| layer | MMACs (fwd) | depthwise + group sum | split + concat (32 convs) | block-diagonal dense | ungrouped conv, same width | PyTorch groups=32, 1 thread |',
    '|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const what = process.argv[2] ?? 'grouped';
  const batch = Number(arg('--batch', '8'));
  const reps = Number(arg('--reps', '3'));
  if (what === 'grouped') console.log(await benchGrouped(batch, reps));
}
