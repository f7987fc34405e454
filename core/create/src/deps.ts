/**
 * Where a scaffold's @tricks/* dependencies come from, so that its `npm install` works as written:
 *
 * - `workspace`: the package is written inside an npm workspace (this repository's plugins/, say): the
 *   root's `npm install` links the workspace's @tricks/* packages; plain version ranges.
 * - `registry`: the @tricks/* packages are on a registry npm reaches (the CLI itself was installed from
 *   one, or `@tricks:registry` is set): plain version ranges.
 * - `tarballs`: the CLI runs from a source checkout and nothing says a registry has these packages: the
 *   scaffold packs @tricks/core, @tricks/helper-plugin-test-runner and the @tricks/* packages they need
 *   (`npm pack` of this checkout's builds) into the package's vendor/tricks/, and package.json names
 *   them by `file:` specs. peerDependencies keep the version range (what a user's install checks).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { minimatch } from 'minimatch';
import { TricksError } from '@tricks/core';

export type DepsMode = 'auto' | 'registry' | 'tarballs';
export type DepsSource = 'workspace' | 'registry' | 'tarballs';

/** Where the tarballs go, relative to the scaffolded package. */
export const VENDOR_DIR = 'vendor/tricks';

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

/** The root of the npm workspace that `dir` would be a workspace package of, if any (the nearest such ancestor). */
export function workspaceRoot(dir: string): string | undefined {
  const target = resolve(dir);
  for (let up = dirname(target); ; up = dirname(up)) {
    const file = join(up, 'package.json');
    if (existsSync(file)) {
      try {
        const ws = readJson(file).workspaces;
        const globs: string[] = Array.isArray(ws) ? ws : Array.isArray(ws?.packages) ? ws.packages : [];
        const rel = relative(up, target).split(sep).join('/');
        if (globs.some((g) => minimatch(rel, g.replace(/^\.\//, '').replace(/\/+$/, '')))) return up;
      } catch {
        /* not a package.json npm could read either */
      }
    }
    if (dirname(up) === up) return undefined;
  }
}

/** The directory of an installed @tricks/* package, resolved from this package (or from `from`). */
function packageDir(name: string, from: string[]): string {
  for (const base of [import.meta.url, ...from.map((f) => join(f, 'package.json'))]) {
    try {
      return dirname(realpathSync(createRequire(base).resolve(`${name}/package.json`)));
    } catch {
      /* next */
    }
  }
  throw new TricksError(
    `cannot find ${name} to pack it`,
    'build the repository (npm install at its root), or scaffold with --deps registry',
  );
}

/** True when @tricks/core is this repository's source (a workspace link), not a package installed into node_modules. */
export function runsFromCheckout(): boolean {
  return !packageDir('@tricks/core', []).split(sep).includes('node_modules');
}

function npm(args: string[], cwd: string) {
  const r = spawnSync('npm', args, { cwd, encoding: 'utf8', shell: process.platform === 'win32', timeout: 120000 });
  return { code: r.status, out: r.stdout ?? '', err: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** `@tricks:registry` from npm's config as seen from `cwd`, if set. */
export function scopeRegistry(cwd: string): string | undefined {
  const start = existsSync(cwd) ? cwd : dirname(cwd);
  const r = npm(['config', 'get', '@tricks:registry'], existsSync(start) ? start : process.cwd());
  const v = r.out.trim();
  return r.code === 0 && /^https?:\/\//.test(v) ? v : undefined;
}

/** Chooses where the @tricks/* dependencies of a package written to `dir` come from. */
export function depsSource(mode: DepsMode, dir: string): DepsSource {
  if (mode === 'registry' || mode === 'tarballs') return mode;
  if (workspaceRoot(dir)) return 'workspace';
  if (!runsFromCheckout()) return 'registry';
  return scopeRegistry(dirname(resolve(dir))) ? 'registry' : 'tarballs';
}

/** `names` and every @tricks/* package they depend on (dependencies, optional and peer), each with its directory. */
export function tricksClosure(names: string[]): Map<string, string> {
  const found = new Map<string, string>();
  const queue = names.map((name) => ({ name, from: [] as string[] }));
  while (queue.length) {
    const { name, from } = queue.shift()!;
    if (found.has(name)) continue;
    const dir = packageDir(name, from);
    found.set(name, dir);
    const pkg = readJson(join(dir, 'package.json'));
    for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
      for (const dep of Object.keys(pkg[field] ?? {})) if (dep.startsWith('@tricks/')) queue.push({ name: dep, from: [dir] });
    }
  }
  return found;
}

/**
 * Packs `names` and the @tricks/* packages they need into `root`/vendor/tricks/ with one `npm pack`;
 * returns each package's `file:` spec, relative to `root`.
 */
export function packTricks(names: string[], root: string): Record<string, string> {
  const closure = tricksClosure(names);
  const dest = join(root, VENDOR_DIR);
  mkdirSync(dest, { recursive: true });
  for (const [name, dir] of closure) {
    if (!existsSync(join(dir, 'dist')))
      throw new TricksError(`${name} (${dir}) is not built`, 'build the repository first: npm install (or npm run build) at its root');
  }
  const r = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dest, ...closure.values()], dest);
  if (r.code !== 0)
    throw new TricksError(
      `npm pack of ${[...closure.keys()].join(', ')} failed: ${r.err.trim().split('\n').slice(-5).join('\n')}`,
      'scaffold with --deps registry if your registry has these packages',
    );
  const packed = JSON.parse(r.out.slice(r.out.indexOf('['))) as { name: string; filename: string }[];
  return Object.fromEntries(packed.map((p) => [p.name, `file:${VENDOR_DIR}/${p.filename.replace(/^.*[\\/]/, '')}`]));
}
