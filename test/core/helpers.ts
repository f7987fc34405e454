// The shared test helpers (@tricks/core/testing's testKit) over the built-ins this package's tests can see.
import type { PluginDefinition } from '@tricks/core';
import { testKit } from '@tricks/core/testing';
import { wasmProvider } from '@tricks/backend-wasm';
import { standardBuiltins } from '@tricks/lab';

export const { builtins, testBackend, tmp, tiny, createTestTrainer } = testKit({
  builtins: standardBuiltins() as PluginDefinition[],
  backends: { wasm: wasmProvider },
});
