// The shared test helpers (@tricks/core/testing's testKit) over the built-ins this package's tests can see.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { Rng, type PluginDefinition } from '@tricks/core';
import { testKit } from '@tricks/core/testing';
import { dataBuiltin } from '@tricks/data';
import { modelsBuiltin } from '@tricks/models';
import { wasmBuiltin, wasmProvider } from '@tricks/backend-wasm';
import { exportBuiltin } from '../src/builtin.js';

export const { builtins, testBackend, tmp, tiny, createTestTrainer } = testKit({
  builtins: [dataBuiltin, modelsBuiltin, wasmBuiltin, exportBuiltin] as PluginDefinition[],
  backends: { wasm: wasmProvider },
});

/** BN statistics and biases moved away from their initial values, so conversions are tested on real numbers. */
export function perturb(m: tfl.LayersModel): void {
  const rng = new Rng(11);
  tf.tidy(() =>
    m.weights.forEach((w) => {
      if (!/moving_|gamma|beta|bias/.test(w.originalName)) return;
      const n = w.shape.reduce<number>((a, b) => a * (b ?? 1), 1);
      const v = Float32Array.from({ length: n }, () =>
        /variance|gamma/.test(w.originalName) ? rng.uniform(0.5, 1.5) : rng.uniform(-0.3, 0.3),
      );
      (w.read() as tf.Variable).assign(tf.tensor(v, w.shape as number[]));
    }),
  );
}
