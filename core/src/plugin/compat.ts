import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TricksError } from '../hooks/errors.js';
import type { PluginDefinition } from './define.js';

export const CORE_VERSION: string = JSON.parse(
  readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'package.json'), 'utf8'),
).version;

type V = [number, number, number];
const parse = (v: string): V => {
  const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(v.trim());
  if (!m) throw new Error(`not a version: ${v}`);
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
};
const cmp = (a: V, b: V) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

/** Does `version` satisfy `range`? Supports the common forms: ^x.y.z, ~x.y.z, >=, <=, >, <, =, x.y.z, *, and `||` / space-joined sets. */
export function satisfies(version: string, range: string): boolean {
  const v = parse(version);
  return range.split('||').some((set) =>
    set.trim().split(/\s+/).filter(Boolean).every((c) => {
      if (c === '*' || c === 'x') return true;
      const m = /^(\^|~|>=|<=|>|<|=)?(.*)$/.exec(c)!;
      const op = m[1] ?? '=';
      const r = parse(m[2]);
      const d = cmp(v, r);
      switch (op) {
        case '^': return d >= 0 && (r[0] > 0 ? v[0] === r[0] : r[1] > 0 ? v[0] === 0 && v[1] === r[1] : v[0] === 0 && v[1] === 0 && v[2] === r[2]);
        case '~': return d >= 0 && v[0] === r[0] && v[1] === r[1];
        case '>=': return d >= 0;
        case '<=': return d <= 0;
        case '>': return d > 0;
        case '<': return d < 0;
        default: return d === 0;
      }
    }),
  );
}

/** Fails early when a plugin declares a core range this core is not in. */
export function checkCoreRange(def: PluginDefinition, source: string): void {
  if (def.core && !satisfies(CORE_VERSION, def.core)) {
    throw new TricksError(
      `plugin ${def.name} (${source}) requires @tricks/core ${def.core}, but this is @tricks/core ${CORE_VERSION}`,
      `install a version of ${source} built for @tricks/core ${CORE_VERSION}, or a core in ${def.core}`,
    );
  }
}
