/**
 * Compression benchmark on Fashion-MNIST: float vs post-training int8 vs QAT int8, and channel pruning at 0.3
 * and 0.5 with fine-tuning. Each row: top-1 of the exported artifact (reloaded, on the validation subset), size
 * on disk, tfjs inference img/s on the wasm backend and ONNX Runtime img/s (1 thread), best of `repeats`.
 * Run: node core/bench/dist/src/export-bench.js [trainItems] [epochs]  (writes runs/bench-compression/results.json)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { DefaultBackendService, MemoryLogger, loadModel, type UserConfig } from '@tricks/core';
import { wasmProvider } from '@tricks/backend-wasm';
import { createStandardTrainer } from '@tricks/lab';
import { modelCost } from '@tricks/models';
import { loadOrt, readInferenceMeta, type ExportRecord } from '@tricks/export';

const DATA = process.env.FASHION_MNIST ?? '/usr/share/datasets/fashion-mnist';

/** [h, w, c] an export takes (a gray network's export takes RGB pixels). */
async function exportShape(dir: string): Promise<number[]> {
  const m = await readInferenceMeta(dir);
  return [...m.inputSize, m.channels];
}

async function tfjsImgPerSec(dir: string, shape: number[], batch = 256, repeats = 5): Promise<number> {
  const m = await loadModel(dir);
  const x = tf.randomUniform([batch, ...shape]);
  let best = Infinity;
  for (let i = 0; i <= repeats; i++) {
    const t0 = performance.now();
    const y = m.predict(x) as tf.Tensor;
    await y.data();
    y.dispose();
    if (i > 0) best = Math.min(best, performance.now() - t0);
  }
  x.dispose();
  m.dispose();
  return (batch / best) * 1000;
}

async function ortImgPerSec(file: string, shape: number[], batch = 256, repeats = 5): Promise<number> {
  const ort = await loadOrt();
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const data = Float32Array.from({ length: batch * shape.reduce((a, b) => a * b, 1) }, () => Math.random());
  let best = Infinity;
  for (let i = 0; i <= repeats; i++) {
    const t0 = performance.now();
    await s.run({ input: new ort.Tensor('float32', data, [batch, ...shape]) });
    if (i > 0) best = Math.min(best, performance.now() - t0);
  }
  await s.release();
  return (batch / best) * 1000;
}

export async function benchCompression(trainItems = 6000, epochs = 3, valItems = 2000): Promise<Record<string, unknown>> {
  const out = join('runs', 'bench-compression');
  mkdirSync(out, { recursive: true });
  const base: UserConfig = {
    data: `fashion-mnist:${DATA}`,
    model: { name: 'small-cnn', options: { width: 16 } },
    epochs,
    batchSize: 64,
    evalBatchSize: 500,
    optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9 },
    limit: { train: trainItems, val: valItems },
    checkpoint: false,
    backend: 'wasm',
    seed: 0,
  };
  const runs: { name: string; config: UserConfig }[] = [
    { name: 'float', config: { plugins: [], export: { formats: ['tfjs', 'tfjs-fp16', 'tfjs-uint8', 'onnx', 'onnx-int8'] } } },
    { name: 'qat', config: { plugins: [['qat', { startEpoch: epochs - 1 }]], export: { formats: ['tfjs', 'onnx'] } } },
    { name: 'prune-0.3', config: { plugins: [['prune', { ratio: 0.3, epoch: epochs - 1 }]], export: { formats: ['tfjs', 'onnx'] } } },
    { name: 'prune-0.5', config: { plugins: [['prune', { ratio: 0.5, epoch: epochs - 1 }]], export: { formats: ['tfjs', 'onnx'] } } },
  ];
  const results: Record<string, unknown>[] = [];
  for (const r of runs) {
    const dir = join(out, r.name);
    const t0 = performance.now();
    const trainer = await createStandardTrainer({ ...base, ...r.config, out: dir }, { logger: new MemoryLogger() });
    const res = await trainer.run();
    const seconds = (performance.now() - t0) / 1000;
    const report = JSON.parse(readFileSync(join(dir, 'export-report.json'), 'utf8')) as {
      reference: { top1: number };
      artifacts: ExportRecord[];
    };
    for (const a of report.artifacts) {
      const shape = await exportShape(a.dir);
      const speed = a.format.startsWith('onnx')
        ? { ort_img_per_sec: await ortImgPerSec(join(a.dir, 'model.onnx'), shape) }
        : { wasm_img_per_sec: await tfjsImgPerSec(a.dir, shape) };
      const model = a.format.startsWith('tfjs') ? await loadModel(a.dir) : undefined;
      const cost = model ? modelCost(model) : undefined;
      model?.dispose();
      results.push({
        run: r.name,
        format: a.format,
        quantization: a.quantization ?? 'float',
        top1: a.top1,
        reference_top1: report.reference.top1,
        agreement: a.agreement,
        bytes: a.bytes,
        ...(cost ? { params: cost.params, macs: cost.macs } : {}),
        ...speed,
      });
    }
    const prune = res.artifacts.at(-1)?.report.prune;
    if (prune) results.push({ run: r.name, prune });
    results.push({
      run: r.name,
      train_seconds: seconds,
      epochs: res.epochs.map((e) => ({ epoch: e.epoch, val_top1: e.val_top1, img_per_sec: e.images_per_sec })),
    });
    console.log(JSON.stringify(results.filter((x) => x.run === r.name)));
  }
  const summary = {
    data: DATA,
    trainItems,
    valItems,
    epochs,
    model: 'small-cnn width 16',
    backend: 'wasm (single thread), ORT 1 thread',
    results,
  };
  writeFileSync(join(out, 'results.json'), JSON.stringify(summary, null, 1));
  return summary;
}

/**
 * Speed only, on the artifacts of a finished benchmark: every artifact timed once per round, rounds interleaved,
 * best of `rounds` kept, so that load from other processes on the shared machine hits all of them alike.
 */
export async function timeArtifacts(rounds = 5): Promise<Record<string, number>> {
  const backend = new DefaultBackendService(new MemoryLogger());
  backend.register('wasm', wasmProvider);
  await backend.select('wasm');
  const out = join('runs', 'bench-compression');
  const summary = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { results: { run: string; format?: string }[] };
  const items = summary.results
    .filter((r) => r.format)
    .map((r) => ({
      key: `${r.run}/${r.format}`,
      // every format of a run's final artifact (OUT/model, model-qat or model-pruned) is in OUT/export/<format>
      dir: join(out, r.run, 'export', r.format!),
      onnx: r.format!.startsWith('onnx'),
    }));
  const best: Record<string, number> = {};
  for (let i = 0; i < rounds; i++) {
    for (const it of items) {
      const shape = await exportShape(it.dir);
      const v = it.onnx ? await ortImgPerSec(join(it.dir, 'model.onnx'), shape, 256, 3) : await tfjsImgPerSec(it.dir, shape, 256, 3);
      best[it.key] = Math.max(best[it.key] ?? 0, v);
    }
  }
  writeFileSync(
    join(out, 'speed.json'),
    JSON.stringify({ rounds, note: 'img/s, batch 256, best of rounds x 3 repeats, interleaved', best }, null, 1),
  );
  return best;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv[2] === 'time') console.log(JSON.stringify(await timeArtifacts(Number(process.argv[3] ?? 5)), null, 1));
  else await benchCompression(Number(process.argv[2] ?? 6000), Number(process.argv[3] ?? 3));
}
