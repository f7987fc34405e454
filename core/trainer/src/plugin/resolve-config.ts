import { TricksError } from '../hooks/errors.js';
import {
  DEFAULT_SETTINGS,
  SETTINGS_HELP,
  SETTINGS_SCHEMA,
  merge,
  normalizeSettings,
  type ResolvedConfig,
  type ResolvedPlugin,
  type TrainSettings,
  type UserConfig,
} from './config.js';
import type { PluginDefinition, PluginItem, PresetItem } from './define.js';
import { load, loadPreset } from './resolve.js';
import { validate } from './validate.js';

export interface ResolveOptions {
  cwd?: string;
  /** For ablations: use the preset ladder up to this step (0-based) instead of the whole recipe. */
  ladderStep?: number;
}

export interface Resolution {
  config: ResolvedConfig;
  /** Plugin definitions in the order their apply() runs. */
  plugins: { definition: PluginDefinition; resolved: ResolvedPlugin }[];
}

interface Collected {
  settings: Partial<TrainSettings>[];
  plugins: { item: PluginItem; from: string }[];
  names: string[];
}

const itemName = (i: PluginItem | PresetItem) => (typeof i === 'string' ? i : i[0]);
const itemOptions = (i: PluginItem | PresetItem) => (typeof i === 'string' ? {} : ((i[1] as Record<string, unknown>) ?? {}));
const itemKey = (i: PluginItem) => (Array.isArray(i) && i.length > 2 ? (i[2] as string) : itemName(i));

/** Plugins of a preset, then its nested presets' plugins in reverse order (Babel's order). */
async function collectPreset(item: PresetItem, cwd: string, opts: ResolveOptions, depth: number, seen: string[]): Promise<Collected> {
  const name = itemName(item);
  if (seen.includes(name)) throw new TricksError(`preset ${name} includes itself (${[...seen, name].join(' -> ')})`);
  const { definition: def, source } = await loadPreset(name, cwd, itemOptions(item));
  const nested: Collected[] = [];
  for (const p of def.presets ?? []) nested.push(await collectPreset(p, cwd, opts, depth + 1, [...seen, name]));
  const own: { item: PluginItem; from: string }[] = (def.plugins ?? []).map((p) => ({ item: p, from: `preset ${def.name}` }));
  const settings: Partial<TrainSettings>[] = [...nested.flatMap((n) => n.settings), normalizeSettings(def.settings ?? {})];
  if (def.ladder) {
    const upTo = depth === 0 && opts.ladderStep !== undefined ? opts.ladderStep : def.ladder.length - 1;
    if (upTo >= def.ladder.length)
      throw new TricksError(`preset ${def.name} has ${def.ladder.length} ladder steps; step ${upTo + 1} does not exist`);
    for (const step of def.ladder.slice(0, upTo + 1)) {
      own.push(...(step.plugins ?? []).map((p) => ({ item: p, from: `preset ${def.name} step ${step.name}` })));
      if (step.settings) settings.push(normalizeSettings(step.settings));
    }
  }
  return {
    settings,
    plugins: [...own, ...nested.reverse().flatMap((n) => n.plugins)],
    names: [...nested.flatMap((n) => n.names), `${def.name} (${source})`],
  };
}

/**
 * Deep merge, except that a model, schedule or optimizer with another name replaces the previous one (a preset's
 * small-cnn options never reach `--model resnet20`; multistep -> cosine; sgd -> adamw keeps lr and weight decay).
 */
export function mergeSettings(base: TrainSettings, over: Partial<TrainSettings>): TrainSettings {
  const b = { ...base };
  if (over.model?.name && over.model.name !== base.model.name) b.model = { name: over.model.name };
  if (over.schedule?.name && over.schedule.name !== base.schedule.name) b.schedule = { name: over.schedule.name };
  if (over.optimizer?.name && over.optimizer.name !== base.optimizer.name)
    b.optimizer = { name: over.optimizer.name, lr: base.optimizer.lr, weightDecay: base.optimizer.weightDecay };
  return merge(b, over);
}

/**
 * Resolves a user config: presets (in Babel's order: plugins before presets, plugins first to last,
 * presets last to first), then the user's own settings and plugins on top. A plugin listed twice in
 * one place is an error unless given a unique key; a plugin the user lists again overrides the
 * preset's options. Every plugin's options are validated against its schema.
 */
export async function resolveConfig(user: UserConfig, opts: ResolveOptions = {}): Promise<Resolution> {
  const cwd = opts.cwd ?? process.cwd();
  const presetItems: PresetItem[] = [...(user.preset ? [user.preset] : []), ...(user.presets ?? [])];
  const collected: Collected[] = [];
  for (const p of presetItems) collected.push(await collectPreset(p, cwd, opts, 0, []));

  let settings: TrainSettings = structuredClone(DEFAULT_SETTINGS);
  for (const c of collected) for (const s of c.settings) settings = mergeSettings(settings, s);
  settings = mergeSettings(settings, normalizeSettings(user));
  validate(SETTINGS_SCHEMA, settings, 'the settings (presets, config file and flags merged)', '', SETTINGS_HELP);

  // User plugins first, then presets last to first.
  const userItems = (user.plugins ?? []).map((p) => ({ item: p, from: 'your config' }));
  const presetPlugins = [...collected].reverse().flatMap((c) => c.plugins);

  const byKey = new Map<string, { item: PluginItem; from: string; options: Record<string, unknown> }>();
  const order: string[] = [];
  const add = (entry: { item: PluginItem; from: string }, userOverride: boolean) => {
    const key = itemKey(entry.item);
    const prev = byKey.get(key);
    if (prev) {
      if (userOverride && prev.from !== 'your config') {
        prev.options = merge(prev.options, itemOptions(entry.item));
        prev.from = entry.from;
        return;
      }
      if (prev.from === 'your config' && !userOverride) {
        // The user's entry already overrides this preset's entry: keep the preset's options underneath.
        prev.options = merge(structuredClone(itemOptions(entry.item)), prev.options);
        return;
      }
      throw new TricksError(
        `plugin "${itemName(entry.item)}" is listed twice (${prev.from} and ${entry.from})`,
        `remove one, or give each a unique name: ["${itemName(entry.item)}", {...}, "${itemName(entry.item)}-2"]`,
      );
    }
    byKey.set(key, { ...entry, options: structuredClone(itemOptions(entry.item)) });
    order.push(key);
  };
  for (const e of presetPlugins) add(e, false);
  // User entries override preset entries of the same key; they come first in order.
  const userKeys: string[] = [];
  for (const e of userItems) {
    const key = itemKey(e.item);
    if (userKeys.includes(key)) {
      throw new TricksError(
        `plugin "${itemName(e.item)}" is listed twice in your config`,
        `remove one, or give each a unique name: ["${itemName(e.item)}", {...}, "${key}-2"]`,
      );
    }
    userKeys.push(key);
    add(e, true);
  }
  const finalOrder = [...userKeys, ...order.filter((k) => !userKeys.includes(k))];

  const plugins: Resolution['plugins'] = [];
  for (const key of finalOrder) {
    const entry = byKey.get(key)!;
    const name = itemName(entry.item);
    const { definition, source } = await load<PluginDefinition>(name, 'plugin', cwd);
    const options = entry.options;
    if (definition.schema)
      validate(definition.schema, options, `plugin ${definition.name} (from ${entry.from})`, `plugins.${definition.name}`);
    plugins.push({ definition, resolved: { name: definition.name, key, options, source } });
  }

  const config: ResolvedConfig = {
    ...settings,
    presets: collected.flatMap((c) => c.names),
    plugins: plugins.map((p) => p.resolved),
    out: user.out ?? defaultOut(),
  };
  return { config, plugins };
}

export function defaultOut(): string {
  return `runs/${new Date().toISOString().replace(/[:.]/g, '-')}`;
}

/** Parses `--plugin name` or `--plugin 'name={"alpha":0.2}'` into a plugin item. */
export function parsePluginFlag(flag: string): PluginItem {
  const eq = flag.indexOf('=');
  if (eq < 0) return flag;
  const name = flag.slice(0, eq);
  const json = flag.slice(eq + 1);
  let options: unknown;
  try {
    options = JSON.parse(json);
  } catch (e) {
    throw new TricksError(
      `--plugin ${flag}: the options after "=" are not valid JSON (${(e as Error).message})`,
      `write it as --plugin '${name}={"key":value}'`,
    );
  }
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TricksError(`--plugin ${flag}: the options must be a JSON object`, `write it as --plugin '${name}={"key":value}'`);
  }
  return [name, options as Record<string, unknown>];
}
