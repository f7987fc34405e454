import { wasmBuiltin } from '@tricks/backend-wasm';
import { checkpointBuiltin } from '@tricks/checkpoint';
import { initFromBuiltin } from '@tricks/convert';
import { createTrainer, type CreateTrainerOptions, type PluginDefinition, type Trainer, type UserConfig } from '@tricks/core';
import { dataBuiltin } from '@tricks/data';
import { exportBuiltin } from '@tricks/export';
import { modelsBuiltin } from '@tricks/models';
import { divergenceCheck } from './divergence.js';
import { reportBuiltin } from './report/builtin.js';

/**
 * The built-ins of a standard run, as `tricks train` has them: the dataset formats, the model zoo, the
 * wasm backend, crash-safe checkpoints and the run-folder lock, pretrained weights (initFrom), the export formats, report.html and the divergence warning. (The CLI adds its progress output.)
 */
export function standardBuiltins(): PluginDefinition[] {
  return [
    checkpointBuiltin,
    initFromBuiltin,
    dataBuiltin,
    modelsBuiltin,
    wasmBuiltin,
    exportBuiltin,
    reportBuiltin,
    divergenceCheck(),
  ] as PluginDefinition[];
}

/** createTrainer with the standard built-ins (and any extra ones first in `opts.builtins`). */
export function createStandardTrainer(user: UserConfig, opts: CreateTrainerOptions = {}): Promise<Trainer> {
  return createTrainer(user, { ...opts, builtins: [...standardBuiltins(), ...(opts.builtins ?? [])] });
}
