// ad-hoc kernel timing (not committed)
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-layers';
import { registerWasmTrainingKernels } from '@tricks/backend-wasm';
const useOurs = process.env.STOCK !== '1';
if (useOurs) registerWasmTrainingKernels();
await tf.setBackend('wasm');
const best = (f, n = 7) => {
  let b = Infinity;
  for (let i = 0; i < n; i++) {
    const t = process.cpuUsage();
    const y = f();
    y.dataSync();
    const d = process.cpuUsage(t);
    b = Math.min(b, (d.user + d.system) / 1000);
    y.dispose();
  }
  return b;
};
const cases = [
  [32, 112, 112, 16, 3, 2],
  [32, 56, 56, 72, 3, 2],
  [32, 28, 28, 88, 3, 1],
  [32, 14, 14, 240, 5, 1],
  [32, 7, 7, 576, 5, 1],
  [16, 112, 112, 64, 3, 1],
];
for (const [n, h, w, c, f, s] of cases) {
  const x = tf.randomNormal([n, h, w, c]),
    k = tf.randomNormal([f, f, c, 1]);
  const y = tf.depthwiseConv2d(x, k, s, 'same');
  const dy = tf.randomNormal(y.shape);
  const fwd = best(() => tf.depthwiseConv2d(x, k, s, 'same'));
  let bf = NaN,
    bi = NaN;
  if (useOurs) {
    bf = best(() =>
      tf
        .engine()
        .runKernel(tf.DepthwiseConv2dNativeBackpropFilter, { x, dy }, { strides: s, pad: 'same', dilations: 1, filterShape: k.shape }),
    );
    bi = best(() =>
      tf
        .engine()
        .runKernel(
          tf.DepthwiseConv2dNativeBackpropInput,
          { dy, filter: k },
          { strides: s, pad: 'same', dilations: 1, inputShape: x.shape },
        ),
    );
  }
  console.log(`dw ${[n, h, w, c].join('x')} f${f} s${s}: fwd ${fwd.toFixed(1)} bpFilter ${bf.toFixed(1)} bpInput ${bi.toFixed(1)} ms`);
  tf.dispose([x, k, y, dy]);
}
