import type { ContainerModule } from 'inversify';
import type { DatasetRegistry } from '../data/registry.js';
import type { PluginHooks, PluginState } from '../contract.js';
import type { ModelRegistry } from '../models/registry.js';
import type { PluginItem, PresetItem, ResolvedConfig, TrainSettings } from './config.js';
import type { JSONSchema } from './validate.js';

export type { PluginItem, PresetItem } from './config.js';

export type { JSONSchema } from './validate.js';

/** What a plugin's apply() receives: the hooks and a few registration calls. No service locator. */
export interface PluginApi {
  /** Tap-only facades of the trainer's hooks (tap, tapAsync, tapPromise, withOptions). */
  readonly hooks: PluginHooks;
  readonly config: ResolvedConfig;
  /** The container's model registry (zoo and every model a plugin registered): kd builds its teacher from it. */
  readonly models?: ModelRegistry;
  /** The container's dataset registry. */
  readonly datasets?: DatasetRegistry;
  /**
   * Save and restore state in checkpoints under `name` (for third-party code; a plugin's own state is
   * better returned from apply(), which the trainer registers under the plugin's key).
   */
  registerState(name: string, state: PluginState): void;
}

/**
 * What apply() may return. A stateful plugin declares its state here rather than opting in through
 * registerState: the trainer saves it in every checkpoint and loads it on resume (after the setup hook),
 * under the plugin's unique key (its name, or the key of a [name, options, key] item), so every plugin that
 * holds state across epochs resumes exactly. Cleanup belongs in the teardown hook, which runs on every exit.
 */
export interface PluginInstance {
  state?: PluginState;
}

export interface PluginDefinition<O = Record<string, unknown>> {
  /** Short name, e.g. "mixup"; also the name every tap uses. */
  name: string;
  description: string;
  /** JSON schema of the options object; `additionalProperties: false` gets "did you mean" hints. */
  schema?: JSONSchema;
  /** The @tricks/core versions this plugin works with (a semver range), checked at load. */
  core?: string;
  /** Taps hooks. Called once per trainer, with validated options (defaults filled in); may return the plugin's state. */
  apply(api: PluginApi, options: O): void | PluginInstance;
  /** inversify modules that bind or rebind services (optimizer, sampler, metrics sink, dataset formats). */
  modules?(options: O): ContainerModule[];
}

export function definePlugin<O = Record<string, unknown>>(def: PluginDefinition<O>): PluginDefinition<O> {
  if (!def || typeof def.name !== 'string' || typeof def.apply !== 'function') {
    throw new Error('definePlugin: a plugin needs a name and an apply(api, options) function');
  }
  return def;
}

/** One rung of an ablation ladder: a name and what it adds to the previous rung. */
export interface LadderStep {
  name: string;
  /** Plugins added at this step (and kept for later steps). */
  plugins?: PluginItem[];
  /** Settings changed at this step (and kept for later steps). */
  settings?: Partial<TrainSettings>;
  /**
   * For a rung that adds kd with a `teacherModel`: what the teacher run `tricks ablate` trains changes from the
   * recipe of the rung before (e.g. `{ epochs: 60 }`, or `{ limit: { train: 60000 } }` for a teacher that saw more
   * data than the student). Not applied to the student.
   */
  teacherSettings?: Partial<TrainSettings>;
}

export interface PresetDefinition {
  name: string;
  description: string;
  plugins?: PluginItem[];
  presets?: PresetItem[];
  /** Trainer settings: model, data, optimizer, schedule, epochs, batchSize... */
  settings?: Partial<TrainSettings>;
  /** Ablation ladder for `tricks ablate`: each step adds tricks to the previous one. */
  ladder?: LadderStep[];
}

export function definePreset(
  def: PresetDefinition | ((options: Record<string, unknown>) => PresetDefinition),
): PresetDefinition | ((options: Record<string, unknown>) => PresetDefinition) {
  return def;
}
