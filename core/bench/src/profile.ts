// Per-kernel profile of a training or inference step (batch 64) on the wasm backend with the training
// kernels: steady-state step time, then tf.profile's kernel milliseconds summed by kernel.
//   node core/bench/dist/src/profile.js [train|infer] [zoo model, default: the bench's ResNet-18-CIFAR] [input px, default 32]
//     [batch, default 64] [classes, default 100]
// TRICKS_PROFILE_SHAPES=1 also lists every convolution call with its input shapes.
// (TRICKS_WASM_THREADS=1 for one thread)
import * as tf from '@tensorflow/tfjs-core';
import { registerWasmTrainingKernels, wasmKernelThreads } from '@tricks/backend-wasm';
import { resnet18Cifar } from './resnet18.js';
import { buildZooModel } from '@tricks/lab';
import { SGD } from '@tricks/core';

const mode = process.argv[2] === 'infer' ? 'infer' : 'train';
registerWasmTrainingKernels();
await tf.setBackend('wasm');
const [name, px] = [process.argv[3], Number(process.argv[4] ?? 32)];
const [batch, classes] = [Number(process.argv[5] ?? 64), Number(process.argv[6] ?? 100)];
const model = name ? buildZooModel(name, px, 3, classes) : resnet18Cifar();
const x = tf.randomNormal([batch, px, px, 3]);
const labels = tf.oneHot(
  tf.tensor1d(
    Array.from({ length: batch }, (_, i) => i % classes),
    'int32',
  ),
  classes,
);
const optimizer = new SGD({ lr: 0.1, momentum: 0.9, weightDecay: 5e-4 }); // the trainer's, as the bench
const step = (): void => {
  if (mode === 'infer') {
    const y = model.predict(x, { batchSize: batch }) as tf.Tensor;
    y.dataSync();
    y.dispose();
    return;
  }
  const loss = optimizer.minimize(
    () => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
    true,
  )!;
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
console.log(
  `${name ?? 'resnet18-cifar (bench)'} ${px}px b${batch} ${mode} step ${best.toFixed(0)} ms (${((batch * 1000) / best).toFixed(1)} img/s), ${wasmKernelThreads()} kernel thread(s), best of 3`,
);
const profile = await tf.profile(step);
const byKernel = new Map<string, { calls: number; ms: number }>();
for (const k of profile.kernels) {
  const e = byKernel.get(k.name) ?? { calls: 0, ms: 0 };
  e.calls++;
  e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
  byKernel.set(k.name, e);
}
if (process.env.TRICKS_PROFILE_SHAPES === '1') {
  // every kernel call grouped by kernel and input shapes, the costliest first
  const byShape = new Map<string, { calls: number; ms: number }>();
  for (const k of profile.kernels) {
    const key = `${k.name.padEnd(36)} ${JSON.stringify(k.inputShapes)}`;
    const e = byShape.get(key) ?? { calls: 0, ms: 0 };
    e.calls++;
    e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    byShape.set(key, e);
  }
  for (const [key, e] of [...byShape].sort((a, b) => b[1].ms - a[1].ms).slice(0, 40))
    console.log(`${key.padEnd(90)} ${String(e.calls).padStart(4)} ${e.ms.toFixed(1).padStart(8)} ms`);
  console.log('--');
}
for (const [name, e] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, Number(process.env.TRICKS_PROFILE_TOP ?? 20))) {
  console.log(`${name.padEnd(36)} ${String(e.calls).padStart(4)} ${e.ms.toFixed(1).padStart(8)} ms`);
}
