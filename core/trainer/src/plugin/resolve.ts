import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TricksError } from '../hooks/errors.js';
import { closest } from '../util/closest.js';
import type { PluginDefinition, PresetDefinition } from './define.js';
import { checkCoreRange } from './compat.js';

export type Kind = 'plugin' | 'preset';

const CORE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Candidate package names for a short name, as Babel does: mixup -> @tricks/plugin-mixup -> tricks-plugin-mixup. */
export function candidates(name: string, kind: Kind): string[] {
  if (name.startsWith('@') || name.startsWith(`tricks-${kind}-`)) return [name];
  return [`@tricks/${kind}-${name}`, `tricks-${kind}-${name}`];
}

/** `./x`, `/x`, or a relative path to an existing file or folder such as `scripts/my-preset.mjs` (no package name has
 * a slash unless it is scoped, `@scope/name`). */
const isPath = (name: string, cwd: string) =>
  name.startsWith('.') || isAbsolute(name) || (!name.startsWith('@') && name.includes('/') && existsSync(resolve(cwd, name)));

/** Directories whose node_modules are searched: the user's project first, then where core is installed. */
function searchRoots(cwd: string): string[] {
  return [join(cwd, 'package.json'), join(CORE_DIR, 'package.json')];
}

function tryResolve(request: string, cwd: string): string | undefined {
  for (const from of searchRoots(cwd)) {
    try {
      return createRequire(from).resolve(request);
    } catch {
      /* next */
    }
  }
  return undefined;
}

export interface Loaded<T> {
  definition: T;
  source: string;
}

async function importDefinition(file: string, source: string, kind: Kind): Promise<unknown> {
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (e) {
    throw new TricksError(
      `${kind} ${source}: failed to load ${file}: ${(e as Error).message}`,
      'is the package built? run `npm run build`',
    );
  }
  return mod.default ?? mod[kind];
}

/** Loads a plugin or preset by short name, package name or path. */
export async function load<T>(name: string, kind: Kind, cwd = process.cwd()): Promise<Loaded<T>> {
  let file: string | undefined;
  let source = name;
  if (isPath(name, cwd)) {
    const p = resolve(cwd, name);
    file = tryResolve(p, cwd) ?? (existsSync(p) && statSync(p).isFile() ? p : undefined);
    if (!file)
      throw new TricksError(
        `${kind} path ${p} does not exist or has no entry point`,
        `give a file or a package directory with a package.json "exports"`,
      );
  } else {
    for (const pkg of candidates(name, kind)) {
      file = tryResolve(pkg, cwd);
      if (file) {
        source = pkg;
        break;
      }
    }
  }
  if (!file) {
    const names = listInstalled(kind, cwd).map((p) => p.name);
    throw new TricksError(
      `unknown ${kind} "${name}"${closest(name, names)}: no package ${candidates(name, kind).join(' or ')} is installed`,
      `available ${kind}s: ${names.join(', ') || '(none)'}`,
    );
  }
  const def = await importDefinition(file, source, kind);
  // A preset may be a function of its options: the caller applies it (collectPreset passes the item's options).
  if (kind === 'preset' && typeof def === 'function') return { definition: def as T, source };
  if (!def || typeof def !== 'object' || typeof (def as { name?: unknown }).name !== 'string') {
    throw new TricksError(
      `${kind} ${source} (${file}) does not export a ${kind} definition`,
      `export default define${kind === 'plugin' ? 'Plugin' : 'Preset'}({...})`,
    );
  }
  if (kind === 'plugin') checkCoreRange(def as PluginDefinition, source, packageJsonOf(file));
  return { definition: def as T, source };
}

/** The nearest package.json above `file` that names a package (skipping `{"type":"module"}` stubs). */
export function packageJsonOf(file: string): { file: string; name?: string; peerDependencies?: Record<string, string> } | undefined {
  let dir = dirname(file);
  for (;;) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      try {
        const json = JSON.parse(readFileSync(p, 'utf8'));
        if (typeof json.name === 'string') return { file: p, name: json.name, peerDependencies: json.peerDependencies };
      } catch {
        /* not readable: keep looking */
      }
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** Loads a preset as a definition object; a function-style preset is called with `options`. */
export async function loadPreset(
  name: string,
  cwd = process.cwd(),
  options: Record<string, unknown> = {},
): Promise<Loaded<PresetDefinition>> {
  const { definition, source } = await load<PresetDefinition | ((o: Record<string, unknown>) => PresetDefinition)>(name, 'preset', cwd);
  const def = typeof definition === 'function' ? definition(options) : definition;
  if (!def || typeof def !== 'object' || typeof def.name !== 'string') {
    throw new TricksError(`preset ${source} does not export a preset definition`, 'export default definePreset({...})');
  }
  return { definition: def, source };
}

export interface InstalledPackage {
  name: string;
  package: string;
  dir: string;
}

/** Every installed @tricks/<kind>-* and tricks-<kind>-* package reachable from cwd or core. */
export function listInstalled(kind: Kind, cwd = process.cwd()): InstalledPackage[] {
  const found = new Map<string, InstalledPackage>();
  const visit = (nm: string) => {
    if (!existsSync(nm)) return;
    const scoped = join(nm, '@tricks');
    if (existsSync(scoped)) {
      for (const d of readdirSync(scoped)) {
        if (d.startsWith(`${kind}-`)) add(d.slice(kind.length + 1), `@tricks/${d}`, join(scoped, d));
      }
    }
    for (const d of readdirSync(nm)) {
      if (d.startsWith(`tricks-${kind}-`)) add(d.slice(`tricks-${kind}-`.length), d, join(nm, d));
    }
  };
  const add = (name: string, pkg: string, dir: string) => {
    if (found.has(name) || !existsSync(join(dir, 'package.json'))) return;
    // A package may opt out of being listed (e.g. the shared test runner, @tricks/helper-plugin-test-runner).
    if (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).tricksPlugin === false) return;
    found.set(name, { name, package: pkg, dir });
  };
  for (const start of [cwd, CORE_DIR]) {
    let dir = resolve(start);
    for (;;) {
      visit(join(dir, 'node_modules'));
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export function packageVersion(dir: string): string | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

export type { PluginDefinition, PresetDefinition };
