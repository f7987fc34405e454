// The shared test helpers (@tricks/core/testing's testKit) over the built-ins this package's tests can see.
import type { PluginDefinition } from '@tricks/core';
import { testKit } from '@tricks/core/testing';
import { modelsBuiltin } from '@tricks/models';
import { wasmBuiltin, wasmProvider } from '@tricks/backend-wasm';
import { dataBuiltin } from '../src/register.js';

export const { builtins, testBackend, tmp, tiny, createTestTrainer } = testKit({
  builtins: [dataBuiltin, modelsBuiltin, wasmBuiltin] as PluginDefinition[],
  backends: { wasm: wasmProvider },
});
