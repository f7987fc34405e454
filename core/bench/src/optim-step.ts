// The optimizer step over ResNet-18-CIFAR's 11.2M weights on wasm: the one-pass kernels
// (TricksSgdStep, TricksAdamStep) against the unfused updates, in one process, alternating
// (unregistering the kernel selects the unfused path), best of 4 rounds x 5 steps.
//   node core/bench/dist/src/optim-step.js
import * as tf from '@tensorflow/tfjs-core';
import { registerWasmTrainingKernels } from '@tricks/backend-wasm';
import { ADAM_STEP_KERNEL, AdamW, SGD, SGD_STEP_KERNEL, type TricksOptimizer } from '@tricks/core';
import { resnet18Cifar } from './resnet18.js';

registerWasmTrainingKernels();
await tf.setBackend('wasm');
const model = resnet18Cifar();
const weights = model.trainableWeights.map((v) => v.read() as tf.Variable);
const grads = Object.fromEntries(weights.map((v) => [v.name, tf.randomNormal(v.shape, 0, 0.01)]));
const cases: [string, string, TricksOptimizer][] = [
  ['SGD (momentum 0.9, decay 5e-4)', SGD_STEP_KERNEL, new SGD({ lr: 0.1, momentum: 0.9, weightDecay: 5e-4 })],
  ['AdamW (decay 0.05)', ADAM_STEP_KERNEL, new AdamW({ lr: 1e-3, weightDecay: 0.05 })],
];
for (const [name, kernel, opt] of cases) {
  const config = tf.getKernel(kernel, 'wasm')!;
  const best = (): number => {
    let ms = Infinity;
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      opt.applyGradients(grads);
      weights.at(-1)!.dataSync();
      ms = Math.min(ms, performance.now() - t);
    }
    return ms;
  };
  let fused = Infinity,
    unfused = Infinity;
  for (let round = 0; round < 4; round++) {
    fused = Math.min(fused, best());
    tf.unregisterKernel(kernel, 'wasm');
    try {
      unfused = Math.min(unfused, best());
    } finally {
      tf.registerKernel(config);
    }
  }
  console.log(
    `${name} over ${weights.reduce((a, v) => a + v.size, 0)} weights: one pass ${fused.toFixed(1)} ms, unfused ${unfused.toFixed(1)} ms`,
  );
}
