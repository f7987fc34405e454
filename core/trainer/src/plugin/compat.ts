import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { TricksError } from '../hooks/errors.js';
import type { PluginDefinition } from './define.js';

export const CORE_VERSION: string = JSON.parse(
  readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'package.json'), 'utf8'),
).version;

/**
 * Does `version` satisfy the npm range `range`? node-semver's rules (^, ~, x-ranges, hyphen ranges,
 * `||`, prereleases). Throws a RangeError on a range it cannot read (semver itself would say false).
 */
export function satisfies(version: string, range: string): boolean {
  if (semver.validRange(range) === null) throw new RangeError(`not a semver range: "${range}"`);
  return semver.satisfies(version, range);
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
export function coreRequirement(
  def: PluginDefinition,
  packageJson?: { file: string; peerDependencies?: Record<string, string> },
): CoreRequirement | undefined {
  if (def.core) return { range: def.core, from: 'its definition (core)' };
  const peer = packageJson?.peerDependencies?.['@tricks/core'];
  if (peer) return { range: peer, from: `peerDependencies of ${packageJson!.file}` };
  return undefined;
}

/** Fails early when a plugin declares a core range (in its definition or its package.json) this core is not in. */
export function checkCoreRange(
  def: PluginDefinition,
  source: string,
  packageJson?: { file: string; peerDependencies?: Record<string, string> },
): void {
  const req = coreRequirement(def, packageJson);
  if (!req) return;
  let ok: boolean;
  try {
    ok = satisfies(CORE_VERSION, req.range);
  } catch (e) {
    throw new TricksError(
      `plugin ${def.name} (${source}) declares the @tricks/core range "${req.range}" in ${req.from}, which is not a valid range (${(e as Error).message})`,
      'write a semver range such as ^0.1.0',
    );
  }
  if (!ok) {
    throw new TricksError(
      `plugin ${def.name} (${source}) requires @tricks/core ${req.range}, but this is @tricks/core ${CORE_VERSION} (range from ${req.from})`,
      `install a version of ${source} built for @tricks/core ${CORE_VERSION}, or a core in ${req.range}`,
    );
  }
}
