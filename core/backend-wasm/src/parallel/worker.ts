// One DataParallel replica: its own tfjs engine and backend (wasm by default, with the training
// kernels), its own copy of the model and optimizer. Gradients go through shared memory; every
// replica applies the same averaged gradient, so the trainable weights stay identical.
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { registerWasmTrainingKernels } from '../kernels.js';
import { SGD } from '@tricks/core';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const send = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

if (init.backend === 'wasm') registerWasmTrainingKernels();
await tf.setBackend(init.backend);
const url = init.model.module.startsWith('file:') ? init.model.module : pathToFileURL(init.model.module).href;
const builder = (await import(url))[init.model.export ?? 'default'] as (...args: unknown[]) => LayersModel;
const model = builder(...(init.model.args ?? []));
const weights = model.trainableWeights.map((v) => v.read() as tf.Variable);
const sizes = weights.map((v) => v.size);
const params = sizes.reduce((a, b) => a + b, 0);
const momentum = init.optimizer.momentum ?? 0,
  weightDecay = init.optimizer.weightDecay ?? 0;
const optimizer = new SGD({ lr: init.optimizer.lr, momentum, weightDecay }); // the trainer's SGD (one native pass per weight on wasm)
let slots: Float32Array | undefined;

function computeGrads(x: tf.Tensor, y: tf.Tensor): number {
  const loss = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const logits = model.apply(x, { training: true }) as tf.Tensor;
      return tf.losses.softmaxCrossEntropy(y, logits, undefined, init.labelSmoothing) as tf.Scalar;
    }, weights);
    let offset = init.rank * params;
    for (const v of weights) {
      slots!.set(grads[v.name]!.dataSync() as Float32Array, offset);
      offset += v.size;
    }
    return value;
  });
  const value = loss.dataSync()[0]!;
  loss.dispose();
  return value;
}

/** Averages every replica's slot (in the same order on every replica: identical results). */
function apply(lr: number): void {
  optimizer.setLearningRate(lr);
  tf.tidy(() => {
    let offset = 0;
    const named = weights.map((v, i) => {
      const mean = new Float32Array(sizes[i]!);
      for (let w = 0; w < init.workers; w++) {
        const slot = slots!.subarray(w * params + offset, w * params + offset + sizes[i]!);
        for (let j = 0; j < mean.length; j++) mean[j]! += slot[j]!;
      }
      for (let j = 0; j < mean.length; j++) mean[j]! /= init.workers;
      offset += sizes[i]!;
      return { name: v.name, tensor: tf.tensor(mean, v.shape) };
    });
    optimizer.applyGradients(named);
  });
}

port.on('message', (m: ToWorker) => {
  try {
    switch (m.kind) {
      case 'attach':
        slots = new Float32Array(m.grads);
        send({ kind: 'attached' });
        break;
      case 'get-weights': {
        const ws = model.getWeights().map((w) => w.dataSync() as Float32Array);
        send(
          { kind: 'weights', weights: ws },
          ws.map((w) => w.buffer as ArrayBuffer),
        );
        break;
      }
      case 'set-weights': {
        const shapes = model.getWeights().map((w) => w.shape);
        const ts = m.weights.map((w, i) => tf.tensor(w, shapes[i]));
        model.setWeights(ts);
        tf.dispose(ts);
        send({ kind: 'weights', weights: [] });
        break;
      }
      case 'grads': {
        const [x, y] = [tf.tensor(m.x, m.xShape), tf.tensor(m.y, m.yShape)];
        const loss = computeGrads(x, y);
        tf.dispose([x, y]);
        send({ kind: 'grads-done', loss });
        break;
      }
      case 'apply':
        apply(m.lr);
        send({ kind: 'applied' });
        break;
      case 'predict': {
        const x = tf.tensor(m.x, m.xShape);
        const y = model.predict(x, { batchSize: m.xShape[0] }) as tf.Tensor;
        const values = y.dataSync() as Float32Array;
        send({ kind: 'logits', values, shape: y.shape }, [values.buffer as ArrayBuffer]);
        tf.dispose([x, y]);
        break;
      }
    }
  } catch (e) {
    send({ kind: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});
send({ kind: 'ready', params, shapes: weights.map((v) => v.shape) });
