import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TricksError } from '../hooks/errors.js';
import type { PluginDefinition } from './define.js';

export const CORE_VERSION: string = JSON.parse(
  readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'package.json'), 'utf8'),
).version;

type V = [number, number, number];
const cmp = (a: V, b: V) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

/** A version or partial version: `1.2.3`, `1.2`, `1`, `1.x`, `*` (n = how many numbers were given). */
function partial(text: string): { v: V; n: number } {
  const m = /^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:[-+][0-9A-Za-z.+-]*)?$/.exec(text.trim());
  if (!m) throw new RangeError(`not a version: "${text}"`);
  const parts = [m[1], m[2], m[3]];
  const n = parts.findIndex((p) => p === undefined || /^[xX*]$/.test(p));
  const count = n < 0 ? 3 : n;
  const v = [0, 0, 0] as V;
  for (let i = 0; i < count; i++) v[i] = Number(parts[i]);
  return { v, n: count };
}

/** The smallest version above every version matching the first `i + 1` numbers of v. */
const bump = (v: V, i: number): V => [i === 0 ? v[0] + 1 : v[0], i === 1 ? v[1] + 1 : i === 0 ? 0 : v[1], i === 2 ? v[2] + 1 : 0];

/** One comparator as [lower (inclusive), upper (exclusive)] bounds, following node-semver. */
function bounds(op: string, text: string): [V | undefined, V | undefined] {
  const { v, n } = partial(text);
  if (n === 0) return op === '<' || op === '>' ? [[0, 0, 0], [0, 0, 0]] : [undefined, undefined];
  switch (op) {
    case '^': {
      const first = v.slice(0, n).findIndex((x) => x !== 0);
      return [v, bump(v, first < 0 ? n - 1 : first)];
    }
    case '~':
      return [v, bump(v, n >= 2 ? 1 : 0)];
    case '>=':
      return [v, undefined];
    case '>':
      return [n < 3 ? bump(v, n - 1) : bump(v, 2), undefined];
    case '<':
      return [undefined, v];
    case '<=':
      return [undefined, n < 3 ? bump(v, n - 1) : bump(v, 2)];
    default:
      return [v, n < 3 ? bump(v, n - 1) : bump(v, 2)];
  }
}

/**
 * Does `version` satisfy `range`? The npm range grammar without prerelease rules: ^, ~, >=, <=, >, <,
 * =, exact and partial versions (1.2, 1.x, *), hyphen ranges (1.2 - 2), space-joined sets and `||`.
 * Throws a RangeError on a range it cannot read.
 */
export function satisfies(version: string, range: string): boolean {
  const { v } = partial(version);
  return range.split('||').some((set) => {
    const hyphen = /^\s*(\S+)\s+-\s+(\S+)\s*$/.exec(set);
    const comparators: [string, string][] = hyphen
      ? [['>=', hyphen[1]], ['<=', hyphen[2]]]
      : (set.trim().replace(/(\^|~|>=|<=|>|<|=)\s+/g, '$1').split(/\s+/).filter(Boolean).map((c) => {
          const m = /^(\^|~|>=|<=|>|<|=)?(.*)$/.exec(c)!;
          return [m[1] ?? '=', m[2]] as [string, string];
        }));
    return comparators.every(([op, text]) => {
      const [lo, hi] = bounds(op, text);
      return (!lo || cmp(v, lo) >= 0) && (!hi || cmp(v, hi) < 0);
    });
  });
}

/** Where a plugin's supported core range comes from: its definition's `core`, else its package.json peerDependency. */
export interface CoreRequirement {
  range: string;
  from: string;
}

/**
 * The core range a plugin declares: `core` in its definition wins; without it, the
 * peerDependencies["@tricks/core"] of the package.json it was loaded from (`packageJson`, if known).
 */
export function coreRequirement(def: PluginDefinition, packageJson?: { file: string; peerDependencies?: Record<string, string> }): CoreRequirement | undefined {
  if (def.core) return { range: def.core, from: 'its definition (core)' };
  const peer = packageJson?.peerDependencies?.['@tricks/core'];
  if (peer) return { range: peer, from: `peerDependencies of ${packageJson!.file}` };
  return undefined;
}

/** Fails early when a plugin declares a core range (in its definition or its package.json) this core is not in. */
export function checkCoreRange(def: PluginDefinition, source: string, packageJson?: { file: string; peerDependencies?: Record<string, string> }): void {
  const req = coreRequirement(def, packageJson);
  if (!req) return;
  let ok: boolean;
  try {
    ok = satisfies(CORE_VERSION, req.range);
  } catch (e) {
    throw new TricksError(`plugin ${def.name} (${source}) declares the @tricks/core range "${req.range}" in ${req.from}, which is not a valid range (${(e as Error).message})`, 'write a semver range such as ^0.1.0');
  }
  if (!ok) {
    throw new TricksError(
      `plugin ${def.name} (${source}) requires @tricks/core ${req.range}, but this is @tricks/core ${CORE_VERSION} (range from ${req.from})`,
      `install a version of ${source} built for @tricks/core ${CORE_VERSION}, or a core in ${req.range}`,
    );
  }
}
