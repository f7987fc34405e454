import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { SyncWaterfallHook } from 'tapable';
import { TricksError } from '../hooks/errors.js';
import type { BuildHooks, BlockInfo, NeckInfo } from '../contract.js';
import { closest } from '../util/closest.js';

export interface ModelSpec {
  /** [height, width, channels] */
  inputShape: [number, number, number];
  numClasses: number;
  /** Model-specific options, e.g. { width: 2 }. */
  options?: Record<string, unknown>;
}

export type ModelBuilder = (spec: ModelSpec, hooks: BuildHooks) => LayersModel;

export interface ModelEntry {
  name: string;
  description: string;
  build: ModelBuilder;
}

/** Hooks for building a model outside a trainer: no taps, so blocks pass through unchanged. */
export function emptyBuildHooks(): BuildHooks {
  return {
    block: new SyncWaterfallHook<[SymbolicTensor, BlockInfo]>(['branch', 'info']),
    neck: new SyncWaterfallHook<[SymbolicTensor, NeckInfo]>(['features', 'info']),
  };
}

/** Backbones by name (empty in core: @tricks/models registers the zoo). A service: users and plugins register more, or rebind it. */
export class ModelRegistry {
  private readonly entries = new Map<string, ModelEntry>();

  register(name: string, description: string, build: ModelBuilder): void {
    this.entries.set(name, { name, description, build });
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  list(): ModelEntry[] {
    return [...this.entries.values()];
  }

  build(name: string, spec: ModelSpec, hooks: BuildHooks = emptyBuildHooks()): LayersModel {
    const entry = this.entries.get(name);
    if (!entry) {
      const names = [...this.entries.keys()];
      throw new TricksError(`unknown model "${name}"${closest(name, names)}`, `available: ${names.join(', ')}`);
    }
    return entry.build(spec, hooks);
  }
}
