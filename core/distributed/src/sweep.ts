import { resolve as resolvePath, join } from 'node:path';
import { TricksError, SETTINGS_SCHEMA, merge, type UserConfig, type PluginItem, loadPreset, closest, Rng } from '@tricks/core';
import type { RunSpec } from './runner.js';

/** A distribution a random search samples from (with --random only). */
export type Distribution = { uniform: [number, number] } | { loguniform: [number, number] } | { int: [number, number] };
export type GridValue = unknown[] | Distribution;
export type Grid = Record<string, GridValue>;

const SETTING_KEYS = Object.keys(SETTINGS_SCHEMA.properties).filter((k) => !['preset', 'presets', 'plugins', 'out', 'modules'].includes(k));

const isDist = (v: unknown): v is Distribution =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  Object.keys(v).length === 1 &&
  ['uniform', 'loguniform', 'int'].includes(Object.keys(v)[0]);

/**
 * Parses and checks `--grid`: a JSON object whose keys are config paths (`optimizer.lr`,
 * `epochs`, or `plugins.NAME.OPTION` for a plugin's option) and whose values are lists of values,
 * or, for a random search, {"uniform":[lo,hi]}, {"loguniform":[lo,hi]} or {"int":[lo,hi]}.
 */
export function parseGrid(text: string, random?: number): Grid {
  let grid: unknown;
  try {
    grid = JSON.parse(text);
  } catch (e) {
    throw new TricksError(
      `--grid: not valid JSON (${(e as Error).message})`,
      `write it as --grid '{"optimizer.lr":[0.05,0.1],"plugins.mixup.alpha":[0.2,0.4]}'`,
    );
  }
  if (typeof grid !== 'object' || grid === null || Array.isArray(grid) || !Object.keys(grid).length) {
    throw new TricksError('--grid: expected a non-empty JSON object of "path": [values]', `e.g. --grid '{"optimizer.lr":[0.05,0.1]}'`);
  }
  for (const [key, v] of Object.entries(grid)) {
    checkKey(key);
    if (Array.isArray(v)) {
      if (!v.length) throw new TricksError(`--grid "${key}": the list of values is empty`, 'give at least one value');
    } else if (isDist(v)) {
      const [lo, hi] = Object.values(v)[0] as unknown[];
      const kind = Object.keys(v)[0];
      if (random === undefined)
        throw new TricksError(
          `--grid "${key}": {"${kind}":...} is a distribution, which only a random search samples`,
          'add --random N, or give a list of values',
        );
      if (typeof lo !== 'number' || typeof hi !== 'number' || !(lo <= hi))
        throw new TricksError(`--grid "${key}": {"${kind}":[lo,hi]} needs two numbers with lo <= hi`);
      if (kind === 'loguniform' && lo <= 0) throw new TricksError(`--grid "${key}": loguniform needs lo > 0`);
    } else {
      throw new TricksError(
        `--grid "${key}": expected a list of values${random !== undefined ? ' or {"uniform"|"loguniform"|"int":[lo,hi]}' : ''}, got ${JSON.stringify(v)}`,
      );
    }
  }
  return grid as Grid;
}

function checkKey(key: string): void {
  const parts = key.split('.');
  if (parts.some((p) => !p)) throw new TricksError(`--grid "${key}": empty path segment`);
  if (parts[0] === 'plugins') {
    if (parts.length < 3) throw new TricksError(`--grid "${key}": a plugin option is plugins.NAME.OPTION`, 'e.g. "plugins.mixup.alpha"');
    return;
  }
  if (!SETTING_KEYS.includes(parts[0])) {
    throw new TricksError(
      `--grid "${key}": unknown setting "${parts[0]}"${closest(parts[0], [...SETTING_KEYS, 'plugins'])}`,
      `settings: ${SETTING_KEYS.join(', ')}; a plugin option is plugins.NAME.OPTION`,
    );
  }
}

/** The grid's points: the full product (key order, last key fastest), or N seeded random draws. */
export function gridPoints(grid: Grid, random?: number, seed = 0): Record<string, unknown>[] {
  const keys = Object.keys(grid);
  const lists = keys.map((k) => grid[k]);
  const allLists = lists.every(Array.isArray);
  if (random === undefined) {
    let points: Record<string, unknown>[] = [{}];
    keys.forEach((k, i) => {
      points = points.flatMap((p) => (lists[i] as unknown[]).map((v) => ({ ...p, [k]: v })));
    });
    return points;
  }
  if (!Number.isInteger(random) || random < 1) throw new TricksError(`--random ${random}: expected a positive integer`);
  const rng = new Rng(seed);
  if (allLists) {
    // Without replacement from the product, so no run is trained twice.
    const size = lists.reduce((n, l) => n * (l as unknown[]).length, 1);
    const n = Math.min(random, size);
    const chosen = Array.from(rng.permutation(size))
      .slice(0, n)
      .sort((a, b) => a - b);
    return chosen.map((flat) => {
      const p: Record<string, unknown> = {};
      for (let i = keys.length - 1; i >= 0; i--) {
        const l = lists[i] as unknown[];
        p[keys[i]] = l[flat % l.length];
        flat = Math.floor(flat / l.length);
      }
      return Object.fromEntries(keys.map((k) => [k, p[k]]));
    });
  }
  return Array.from({ length: random }, () =>
    Object.fromEntries(
      keys.map((k, i) => {
        const v = lists[i];
        if (Array.isArray(v)) return [k, v[Math.floor(rng.next() * v.length)]];
        const [kind, [lo, hi]] = Object.entries(v)[0] as [string, [number, number]];
        if (kind === 'uniform') return [k, round(lo + (hi - lo) * rng.next())];
        if (kind === 'loguniform') return [k, round(Math.exp(Math.log(lo) + (Math.log(hi) - Math.log(lo)) * rng.next()))];
        return [k, lo + Math.floor(rng.next() * (hi - lo + 1))];
      }),
    ),
  );
}

/** 4 significant digits: readable labels, and the same value on every machine. */
const round = (x: number) => Number(x.toPrecision(4));

/** The user config with one point applied: `plugins.NAME.OPT` adds or overrides that plugin's option. */
export function applyPoint(base: UserConfig, point: Record<string, unknown>): UserConfig {
  let out = structuredClone({ ...base, modules: undefined }) as UserConfig;
  if (base.modules) out.modules = base.modules;
  for (const [key, value] of Object.entries(point)) {
    const parts = key.split('.');
    if (parts[0] === 'plugins') {
      const [, name, ...path] = parts;
      const options = nest(path, value);
      const plugins: PluginItem[] = [...(out.plugins ?? [])];
      const i = plugins.findIndex((p) => (Array.isArray(p) ? (p[2] ?? p[0]) : p) === name);
      if (i < 0) plugins.push([name, options]);
      else {
        const p = plugins[i];
        const [n, o, k] = typeof p === 'string' ? [p, {}, undefined] : [p[0], p[1] ?? {}, p[2]];
        const merged = merge(structuredClone(o), options);
        plugins[i] = k ? [n, merged, k] : [n, merged];
      }
      out.plugins = plugins;
    } else {
      out = merge(out, nest(parts, value)) as UserConfig;
    }
  }
  return out;
}

const nest = (path: string[], value: unknown): Record<string, unknown> =>
  path.reduceRight<unknown>((acc, k) => ({ [k]: acc }), value) as Record<string, unknown>;

/** "mixup.alpha=0.2 optimizer.lr=0.05" */
export const pointLabel = (point: Record<string, unknown>) =>
  Object.entries(point)
    .map(([k, v]) => `${k.replace(/^plugins\./, '')}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');

export interface SweepOptions {
  preset?: string;
  grid: Grid;
  random?: number;
  seeds: number;
  /** First seed; runs use seed, seed+1, ... */
  seed?: number;
  overrides: UserConfig;
  out: string;
  cwd?: string;
}

/** One RunSpec per grid point x seed, in OUT/pNN-sS, over the preset's whole recipe (its last ladder step). */
export async function planSweep(opts: SweepOptions): Promise<RunSpec[]> {
  if (!Number.isInteger(opts.seeds) || opts.seeds < 1) throw new TricksError(`--seeds ${opts.seeds}: expected a positive integer`);
  const cwd = opts.cwd ?? process.cwd();
  let preset = opts.preset ?? '';
  let ladderStep = 0;
  if (preset) {
    if (preset.startsWith('.')) preset = resolvePath(cwd, preset);
    const { definition } = await loadPreset(preset, cwd);
    ladderStep = Math.max(0, (definition.ladder?.length ?? 1) - 1);
  }
  const base = opts.seed ?? 0;
  const points = gridPoints(opts.grid, opts.random, base);
  const width = String(points.length - 1).length;
  const specs: RunSpec[] = [];
  points.forEach((point, i) => {
    const label = pointLabel(point);
    for (let s = 0; s < opts.seeds; s++) {
      const id = `p${String(i).padStart(width, '0')}-s${base + s}`;
      specs.push({
        id,
        preset,
        ladderStep,
        stepName: label,
        trick: label,
        seed: base + s,
        overrides: applyPoint(opts.overrides, point),
        out: join(opts.out, id),
      });
    }
  });
  return specs;
}
