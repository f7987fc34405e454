// Per-kernel profile of a training or inference step (batch 64) on the wasm backend with the training
// kernels: steady-state step time, then tf.profile's kernel milliseconds summed by kernel.
//   node core/dist/src/bench/profile.js [train|infer] [zoo model, default: the bench's ResNet-18-CIFAR] [input px, default 32]
// (TRICKS_WASM_THREADS=1 for one thread)
import * as tf from '@tensorflow/tfjs-core';
import { registerWasmTrainingKernels, wasmKernelThreads } from '../backends/wasm/index.js';
import { resnet18Cifar } from './resnet18.js';
import { buildZooModel } from './zoo-model.js';

const mode = process.argv[2] === 'infer' ? 'infer' : 'train';
registerWasmTrainingKernels();
await tf.setBackend('wasm');
const [name, px] = [process.argv[3], Number(process.argv[4] ?? 32)];
const model = name ? buildZooModel(name, px, 3, 100) : resnet18Cifar();
const x = tf.randomNormal([64, px, px, 3]);
const labels = tf.oneHot(tf.tensor1d(Array.from({ length: 64 }, (_, i) => i % 100), 'int32'), 100);
const optimizer = tf.train.momentum(0.1, 0.9);
const step = (): void => {
  if (mode === 'infer') {
    const y = model.predict(x, { batchSize: 64 }) as tf.Tensor;
    y.dataSync();
    y.dispose();
    return;
  }
  const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true)!;
  loss.dataSync();
  loss.dispose();
};
for (let i = 0; i < 2; i++) step();
let best = Infinity;
for (let i = 0; i < 3; i++) {
  const t = performance.now();
  step();
  best = Math.min(best, performance.now() - t);
}
console.log(`${name ?? 'resnet18-cifar (bench)'} ${px}px ${mode} step ${best.toFixed(0)} ms (${(64000 / best).toFixed(1)} img/s), ${wasmKernelThreads()} kernel thread(s), best of 3`);
const profile = await tf.profile(step);
const byKernel = new Map<string, { calls: number; ms: number }>();
for (const k of profile.kernels) {
  const e = byKernel.get(k.name) ?? { calls: 0, ms: 0 };
  e.calls++;
  e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
  byKernel.set(k.name, e);
}
for (const [name, e] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 20)) {
  console.log(`${name.padEnd(28)} ${String(e.calls).padStart(4)} ${e.ms.toFixed(1).padStart(8)} ms`);
}
