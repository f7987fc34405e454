// Where a training step's memory goes at 224 px on the wasm backend (docs/backends.md, "Memory"):
// the peak bytes the tfjs heap allocator hands out during one step, per image (the slope between 1 and 4
// images), and the tensors the gradient tape keeps after the forward pass, by the kernel that saved them.
// Each model runs three ways: tfjs as it ships (tf.variableGrads, tfjs-layers' batch norm and forward, Relu's
// gradient from its input), + the one-op batch norm and Relu's gradient from its output, + variableGradsFrugal
// and applyTraining (what the trainer runs). PyTorch's figure is the bytes its autograd
// saves for backward (saved_tensors_hooks, unique storages), from memory_torch.py in the same run.
//   node core/bench/dist/src/memory.js [model ...]   (default: resnet18 mobilenetv3-small efficientnet-b0 resnet50)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { applyTraining, registerWasmTrainingKernels, variableGradsFrugal, wasmMemory } from '@tricks/backend-wasm';
import { buildZooModel } from '@tricks/lab';

const TORCH = process.env.TORCH_PYTHON ?? '/usr/bin/python3';
const TORCH_NAMES: Record<string, string> = {
  resnet18: 'resnet18',
  resnet50: 'resnet50',
  'mobilenetv3-small': 'mobilenet_v3_small',
  'mobilenetv3-large': 'mobilenet_v3_large',
  'efficientnet-b0': 'efficientnet_b0',
};
const MB = (b: number) => (b / 2 ** 20).toFixed(1);

interface TapeNode {
  kernelName: string;
  saved?: tf.Tensor[];
}
const engineState = () => (tf.engine() as unknown as { state: { activeTape: TapeNode[] | null } }).state;

/** Peak heap bytes of one step of m images; with `keptBy`, the bytes the tape keeps after the forward, by kernel. */
function step(model: LayersModel, m: number, frugal: boolean, keptBy?: Map<string, number>): number {
  const forward = (x: tf.Tensor) => (frugal ? applyTraining(model, x) : (model.apply(x, { training: true }) as tf.Tensor));
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  return wasmMemory.peakDuring(() =>
    tf.tidy(() => {
      const x = tf.randomNormal([m, 224, 224, 3]);
      const y = tf.oneHot(tf.zeros([m], 'int32') as tf.Tensor1D, 1000);
      const grads = frugal ? variableGradsFrugal : tf.variableGrads;
      const { value, grads: g } = grads(() => {
        const loss = tf.losses.softmaxCrossEntropy(y, forward(x)) as tf.Scalar;
        if (keptBy) {
          const seen = new Set<object>();
          for (const node of engineState().activeTape ?? [])
            for (const t of node.saved ?? []) {
              const id = t.dataId as object;
              if (seen.has(id)) continue;
              seen.add(id);
              keptBy.set(node.kernelName, (keptBy.get(node.kernelName) ?? 0) + t.size * 4);
            }
        }
        return loss;
      }, vars);
      value.dataSync();
      tf.dispose([value, ...Object.values(g)]);
    }),
  );
}

function child(name: string, mode: string): void {
  const frugal = mode === 'frugal';
  const model = buildZooModel(name, 224, 3, 1000);
  const one = step(model, 1, frugal);
  const four = step(model, 4, frugal);
  const kept1 = new Map<string, number>(),
    kept4 = new Map<string, number>();
  step(model, 1, frugal, kept1);
  step(model, 4, frugal, kept4);
  const perImage = (four - one) / 3;
  // per image: the slope between 1 and 4 images (weights the tape saves, e.g. conv filters, cancel out)
  const top = [...kept4]
    .map(([k, v]) => [k, (v - (kept1.get(k) ?? 0)) / 3] as const)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1]);
  console.log(JSON.stringify({ perImage, fixed: one - perImage, kept: top }));
}

const torchSaved = (name: string): number | undefined => {
  const r = spawnSync(TORCH, [fileURLToPath(new URL('../../src/memory_torch.py', import.meta.url)), TORCH_NAMES[name] ?? name], {
    encoding: 'utf8',
  });
  const m = /saved_per_image_bytes (\d+)/.exec(r.stdout ?? '');
  return m ? Number(m[1]) : undefined;
};

if (process.argv[2] === '--child') {
  registerWasmTrainingKernels();
  await tf.setBackend('wasm');
  child(process.argv[3]!, process.argv[4]!);
} else {
  const models = process.argv.slice(2).length ? process.argv.slice(2) : ['resnet18', 'mobilenetv3-small', 'efficientnet-b0', 'resnet50'];
  console.log(
    '| model | tfjs as shipped MB/image | + one-op batch norm, ReLU saves its output | + frugal gradients and forward (the trainer) | kept by the tape after the forward (trainer), MB/image | PyTorch saved for backward, MB/image |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const name of models) {
    const res: Record<string, { perImage: number; kept: [string, number][] }> = {};
    for (const mode of ['stock', 'bn', 'frugal']) {
      const env = { ...process.env, TRICKS_WASM_MEMORY_SAVING: mode === 'stock' ? '0' : '1' };
      const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', name, mode], { encoding: 'utf8', env });
      const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
      try {
        res[mode] = JSON.parse(line);
      } catch {
        res[mode] = { perImage: NaN, kept: [] };
      }
    }
    const kept = res.frugal!.kept;
    const total = kept.reduce((a, [, v]) => a + v, 0);
    const parts = kept
      .slice(0, 4)
      .map(([k, v]) => `${k} ${MB(v)}`)
      .join(', ');
    const t = torchSaved(name);
    console.log(
      `| ${name} | ${MB(res.stock!.perImage)} | ${MB(res.bn!.perImage)} | ${MB(res.frugal!.perImage)} | ${MB(total)} (${parts}) | ${t === undefined ? 'n/a' : MB(t)} |`,
    );
  }
}
