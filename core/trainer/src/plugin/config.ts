import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ContainerModule } from 'inversify';
import { TricksError } from '../hooks/errors.js';
import type { DataOptions } from '../data/registry.js';
import { validate } from './validate.js';

/** A plugin in a list: a name, [name, options], or [name, options, uniqueName] to allow duplicates. */
export type PluginItem = string | [string] | [string, Record<string, unknown>] | [string, Record<string, unknown>, string];
export type PresetItem = string | [string] | [string, Record<string, unknown>];

export interface TrainSettings {
  model: { name: string; options?: Record<string, unknown> };
  /** Dataset spec, NAME or NAME:DIR (digits, fashion-mnist:DIR, cifar10:DIR, folder:DIR...). */
  data: string;
  dataOptions: DataOptions;
  epochs: number;
  batchSize: number;
  /**
   * Compute each batch as this many micro-batches and accumulate their gradients (one optimizer step per batch;
   * the effective batch stays batchSize). Unset: 1, or as many as the backend's memory needs (wasm's 4 GB heap).
   */
  gradAccum?: number;
  evalBatchSize: number;
  optimizer: { name: string; lr: number; weightDecay?: number; [key: string]: unknown };
  schedule: { name: string; [key: string]: unknown };
  seed: number;
  /** When the training loss diverges (the tricks:divergence built-in): warn once (the default), stop the run, or off. */
  divergence?: 'warn' | 'stop' | 'off';
  backend: string;
  /** Small runs: cap the items used and the steps per epoch. */
  limit: { train?: number; val?: number; steps?: number };
  /** Write a resumable checkpoint after each epoch. */
  checkpoint: boolean;
  /** Export formats written at the end of the run (the export hook adds more). */
  export: { formats: string[] };
  /** report.html (@tricks/lab's report built-in validates it): `interpret: false` or its sizes. */
  report?: { interpret?: boolean | Record<string, unknown> };
  /** Start from these weights: a converted model folder or a PyTorch/safetensors checkpoint (@tricks/convert's built-in). */
  initFrom?: string;
  /** Start from torchvision's published weights of the model (downloaded once, SHA-256 checked; @tricks/convert). */
  pretrained?: boolean;
}

/** What a user writes: a config file, or flags. Everything is optional. */
export interface UserConfig extends Partial<Omit<TrainSettings, 'model' | 'optimizer' | 'schedule'>> {
  model?: string | Partial<TrainSettings['model']>;
  optimizer?: Partial<TrainSettings['optimizer']>;
  schedule?: Partial<TrainSettings['schedule']>;
  preset?: string;
  presets?: PresetItem[];
  plugins?: PluginItem[];
  out?: string;
  /** inversify modules (from a .js/.mjs config file) that rebind services. */
  modules?: ContainerModule[];
}

export interface ResolvedPlugin {
  name: string;
  /** Unique key (the name, or the third element of a [name, options, key] item). */
  key: string;
  options: Record<string, unknown>;
  /** The package or file it came from. */
  source: string;
}

export interface ResolvedConfig extends TrainSettings {
  presets: string[];
  plugins: ResolvedPlugin[];
  out: string;
}

export const DEFAULT_SETTINGS: TrainSettings = {
  model: { name: 'small-cnn' },
  data: 'digits',
  dataOptions: {},
  epochs: 1,
  batchSize: 64,
  evalBatchSize: 256,
  optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 0 },
  schedule: { name: 'constant' },
  seed: 0,
  backend: 'auto',
  limit: {},
  checkpoint: true,
  export: { formats: ['tfjs'] },
};

/** JSON schema of the trainer settings, so a typo in a config file gets a "did you mean". */
export const SETTINGS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    model: {
      anyOf: [
        { type: 'string' },
        { type: 'object', properties: { name: { type: 'string' }, options: { type: 'object' } }, additionalProperties: false },
      ],
    },
    data: { type: 'string' },
    dataOptions: { type: 'object', properties: { valSplit: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 } } },
    epochs: { type: 'integer', minimum: 1 },
    batchSize: { type: 'integer', minimum: 1 },
    gradAccum: { type: 'integer', minimum: 1 },
    evalBatchSize: { type: 'integer', minimum: 1 },
    optimizer: {
      type: 'object',
      properties: { name: { type: 'string' }, lr: { type: 'number', exclusiveMinimum: 0 }, weightDecay: { type: 'number', minimum: 0 } },
    },
    schedule: { type: 'object', properties: { name: { type: 'string' } } },
    seed: { type: 'integer' },
    divergence: { enum: ['warn', 'stop', 'off'] },
    backend: { enum: ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] },
    limit: {
      type: 'object',
      additionalProperties: false,
      properties: { train: { type: 'integer', minimum: 1 }, val: { type: 'integer', minimum: 1 }, steps: { type: 'integer', minimum: 1 } },
    },
    checkpoint: { type: 'boolean' },
    export: { type: 'object', properties: { formats: { type: 'array', items: { type: 'string' } } }, additionalProperties: false },
    report: { type: 'object' },
    initFrom: { type: 'string', minLength: 1 },
    pretrained: { type: 'boolean' },
    preset: { type: 'string' },
    presets: { type: 'array' },
    plugins: { type: 'array' },
    out: { type: 'string', minLength: 1 },
    modules: { type: 'array' },
  },
};

export const SETTINGS_HELP = 'see `tricks train --help` for the settings and their flags (core/trainer/README.md: the defaults)';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge of plain objects; arrays and scalars from `over` replace. */
export function merge<T>(base: T, over: unknown): T {
  if (!isObject(base) || !isObject(over)) return (over === undefined ? base : over) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isObject(v) && isObject(out[k]) ? merge(out[k], v) : v;
  }
  return out as T;
}

/** Settings from a user config: `model: "resnet20"` becomes `{ name: "resnet20" }`. */
export function normalizeSettings(c: UserConfig | Partial<TrainSettings>): Partial<TrainSettings> {
  const { preset: _p, presets: _ps, plugins: _pl, out: _o, modules: _m, ...rest } = c as UserConfig;
  const s = rest as Record<string, unknown>;
  if (typeof s.model === 'string') s.model = { name: s.model };
  return s as Partial<TrainSettings>;
}

export const CONFIG_FILES = ['tricks.config.json', 'tricks.config.mjs', 'tricks.config.js'];

/** Reads tricks.config.{json,mjs,js} from `dir`, or the file given; undefined when there is none. */
export async function loadConfigFile(
  file: string | undefined,
  dir = process.cwd(),
): Promise<{ file: string; config: UserConfig } | undefined> {
  let path: string | undefined;
  if (file) {
    path = resolve(dir, file);
    if (!existsSync(path))
      throw new TricksError(
        `config file ${path} does not exist`,
        `pass an existing file to --config, or name it one of ${CONFIG_FILES.join(', ')}`,
      );
  } else {
    path = CONFIG_FILES.map((f) => resolve(dir, f)).find((p) => existsSync(p));
    if (!path) return undefined;
  }
  let config: unknown;
  try {
    if (path.endsWith('.json')) config = JSON.parse(await readFile(path, 'utf8'));
    else {
      const mod = await import(pathToFileURL(path).href);
      config = mod.default ?? mod.config;
    }
  } catch (e) {
    throw new TricksError(
      `config file ${path}: ${(e as Error).message}`,
      'fix the file: it must be JSON, or a module whose default export is the config object',
    );
  }
  if (!isObject(config)) throw new TricksError(`config file ${path}: expected an object, got ${typeof config}`);
  validate(SETTINGS_SCHEMA, config, `config file ${path}`, '', SETTINGS_HELP);
  return { file: path, config: config as UserConfig };
}
