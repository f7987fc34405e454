import * as tf from '@tensorflow/tfjs-core';
import { variableGradsFrugal as VGF } from '@tricks/core';
import { wasmMemory } from '@tricks/backend-wasm';
import { cliServices } from '/work/main/core/cli/dist/src/services.js';
import { buildZooModel } from '@tricks/lab';
const [name, px, ch, ...ms] = process.argv.slice(2);
const s = await cliServices({});
await s.backend.select('wasm');
const model = buildZooModel(name, Number(px), Number(ch), 10);
const vars = model.trainableWeights.map((w) => w.read());
for (const m of ms.map(Number)) {
  const peak = wasmMemory.peakDuring(() =>
    tf.tidy(() => {
      const x = tf.randomNormal([m, Number(px), Number(px), Number(ch)]);
      const y = tf.oneHot(tf.zeros([m], 'int32'), 10);
      const { value, grads } = VGF(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true })), vars);
      value.dataSync();
      tf.dispose([value, ...Object.values(grads)]);
    }),
  );
  const pp = wasmMemory.peakDuring(() =>
    tf.tidy(() => {
      model.predict(tf.randomNormal([m, Number(px), Number(px), Number(ch)]), { batchSize: m }).dataSync();
    }),
  );
  console.log(
    m,
    'train',
    (peak / 2 ** 20).toFixed(2),
    'MB',
    'predict',
    (pp / 2 ** 20).toFixed(2),
    'heap',
    (tf.backend().wasm.HEAPU8.length / 2 ** 20).toFixed(0),
  );
}
