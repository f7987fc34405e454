// The shared test helpers (@tricks/core/testing's testKit) over the built-ins this package's tests can see.
import type { PluginDefinition } from '@tricks/core';
import { testKit } from '@tricks/core/testing';
import { dataBuiltin } from '@tricks/data';
import { modelsBuiltin } from '@tricks/models';
import { wasmBuiltin, wasmProvider } from '@tricks/backend-wasm';
import { exportBuiltin } from '../src/builtin.js';

export const { builtins, testBackend, tmp, tiny, createTestTrainer } = testKit({
  builtins: [dataBuiltin, modelsBuiltin, wasmBuiltin, exportBuiltin] as PluginDefinition[],
  backends: { wasm: wasmProvider },
});
