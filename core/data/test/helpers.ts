import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createTrainer,
  DefaultBackendService,
  MemoryLogger,
  type CreateTrainerOptions,
  type PluginDefinition,
  type UserConfig,
} from '@tricks/core';
import { tinyConfig } from '@tricks/core/testing';
import { wasmBuiltin, wasmProvider } from '@tricks/backend-wasm';
import { modelsBuiltin } from '@tricks/models';
import { dataBuiltin } from '../src/register.js';
let ready: Promise<string> | undefined;
export const testBackend = () => {
  if (ready) return ready;
  const service = new DefaultBackendService(new MemoryLogger());
  service.register('wasm', wasmProvider);
  return (ready = service.select(process.env.TRICKS_TEST_BACKEND ?? 'wasm'));
};

/** The built-ins a test trainer needs from the packages around core. */
export const builtins: PluginDefinition[] = [dataBuiltin, modelsBuiltin, wasmBuiltin] as PluginDefinition[];

export const tmp = (prefix = 'tricks-core-') => mkdtempSync(join(tmpdir(), prefix));

/** The shared tiny run (@tricks/core/testing) with its own output directory. */
export const tiny = (over: UserConfig = {}): UserConfig => tinyConfig({ out: tmp(), ...over });

/** createTrainer with the test built-ins (datasets, models, the wasm backend, ...). */
export const createTestTrainer = (user: UserConfig, opts: CreateTrainerOptions = {}) =>
  createTrainer(user, { ...opts, builtins: [...builtins, ...(opts.builtins ?? [])] });
