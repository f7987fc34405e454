import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TricksError, CORE_VERSION } from '@tricks/core';
import { depsSource, packTricks, workspaceRoot, type DepsMode, type DepsSource } from './deps.js';
import { PRESET_EXAMPLE_PLUGIN, pluginFiles, presetFiles, type TemplateVars } from './templates.js';

export type ScaffoldKind = 'plugin' | 'preset';

export interface ScaffoldOptions {
  kind: ScaffoldKind;
  /** A short name (`z-loss`) or a package name (`tricks-plugin-z-loss`, `@acme/tricks-plugin-z-loss`). */
  name: string;
  /** Output directory (default: ./<package name without its scope>). */
  dir?: string;
  description?: string;
  cwd?: string;
  /** Write into a non-empty directory, replacing the files the scaffold writes. */
  force?: boolean;
  /**
   * Where the package's @tricks/* dependencies come from (see deps.ts): `registry` writes version ranges,
   * `tarballs` packs this installation's @tricks/* packages into vendor/tricks/ and names them by `file:`
   * specs, `auto` (the default) chooses: ranges inside an npm workspace or when the packages came from a
   * registry, tarballs when running from a source checkout with no `@tricks:registry` configured.
   */
  deps?: DepsMode;
}

export interface Scaffolded {
  dir: string;
  name: string;
  packageName: string;
  /** Paths relative to `dir`. */
  files: string[];
  /** Whether the trainer finds the package by its short name (@tricks/KIND-NAME or tricks-KIND-NAME). */
  shortNameResolves: boolean;
  /** Where its @tricks/* dependencies come from: the workspace, a registry, or tarballs in vendor/tricks/. */
  deps: DepsSource;
  /** The workspace root whose `npm install` installs it (when `deps` is `workspace`). */
  workspaceRoot?: string;
  /** The @tricks/* packages packed into vendor/tricks/ (when `deps` is `tarballs`), with their `file:` specs. */
  tarballs: Record<string, string>;
}

const SHORT = /^[a-z0-9][a-z0-9._-]*$/;
const CORE_PKG = JSON.parse(readFileSync(createRequire(import.meta.url).resolve('@tricks/core/package.json'), 'utf8')) as {
  dependencies?: Record<string, string>;
};

/** The short and package names of `input`, the way the trainer resolves them (like Babel). */
export function parseName(input: string, kind: ScaffoldKind): { name: string; packageName: string } {
  const raw = input.trim();
  const bad = (why: string) =>
    new TricksError(
      `${kind} name "${input}": ${why}`,
      `use lowercase letters, digits and dashes, e.g. \`tricks new ${kind} my-${kind === 'plugin' ? 'trick' : 'recipe'}\``,
    );
  let name: string;
  let packageName: string;
  const scoped = /^@([a-z0-9][a-z0-9._-]*)\/(.+)$/.exec(raw);
  if (scoped) {
    packageName = raw;
    const rest = scoped[2];
    name = rest.startsWith(`${kind}-`)
      ? rest.slice(kind.length + 1)
      : rest.startsWith(`tricks-${kind}-`)
        ? rest.slice(`tricks-${kind}-`.length)
        : rest;
  } else if (raw.startsWith(`tricks-${kind}-`)) {
    packageName = raw;
    name = raw.slice(`tricks-${kind}-`.length);
  } else {
    name = raw;
    packageName = `tricks-${kind}-${raw}`;
  }
  if (!name) throw bad('the name is empty');
  if (!SHORT.test(name)) throw bad('not a valid npm package name part');
  if (packageName.length > 214) throw bad('the package name is longer than npm allows (214)');
  return { name, packageName };
}

/** The version of an installed package reachable from `cwd` or from core, if any. */
function installedVersion(pkg: string, cwd: string): string | undefined {
  for (const from of [join(cwd, 'package.json'), fileURLToPath(import.meta.url)]) {
    try {
      return JSON.parse(readFileSync(createRequire(from).resolve(`${pkg}/package.json`), 'utf8')).version;
    } catch {
      /* next */
    }
  }
  return undefined;
}

const caret = (v: string) => `^${v.replace(/^[^\d]*/, '')}`;

/** The names and version ranges a scaffold is written with. */
export function templateVars(opts: ScaffoldOptions): TemplateVars {
  const { name, packageName } = parseName(opts.name, opts.kind);
  const cwd = opts.cwd ?? process.cwd();
  return {
    name,
    packageName,
    description:
      opts.description ??
      (opts.kind === 'plugin'
        ? `The ${name} trick for tricks (TensorFlow.js image classification)`
        : `The ${name} recipe for tricks: plugins and trainer settings`),
    coreRange: caret(CORE_VERSION),
    tfRange: CORE_PKG.dependencies?.['@tensorflow/tfjs-core'] ?? '^4.22.0',
    tricksRange: caret(installedVersion('@tricks/helper-plugin-test-runner', cwd) ?? CORE_VERSION),
  };
}

/**
 * Writes a plugin or preset package ready to build, test and publish. The files are written to a
 * temporary sibling directory first and renamed into place, so an error leaves nothing half-written.
 */
export function scaffold(opts: ScaffoldOptions): Scaffolded {
  const base = templateVars(opts);
  const cwd = opts.cwd ?? process.cwd();
  const dir = resolve(cwd, opts.dir ?? basename(base.packageName));
  const exists = existsSync(dir);
  if (exists && readdirSync(dir).length > 0 && !opts.force) {
    throw new TricksError(
      `${dir} already exists and is not empty`,
      "choose another directory with --dir, or pass --force to overwrite the scaffold's files there",
    );
  }
  const deps = depsSource(opts.deps ?? 'auto', dir);
  const tmp = `${dir}.tricks-new-${process.pid}`;
  let tarballs: Record<string, string> = {};
  let files: Record<string, string> = {};
  const write = (root: string) => {
    if (deps === 'tarballs') {
      // One `npm pack` of @tricks/core, the shared test runner (and, for a preset, its plugin) and every
      // @tricks/* package they need, into the temporary directory: renamed into place with the rest.
      tarballs = packTricks(
        ['@tricks/core', '@tricks/helper-plugin-test-runner', ...(opts.kind === 'preset' ? [PRESET_EXAMPLE_PLUGIN.package] : [])],
        root,
      );
    }
    const vars: TemplateVars = { ...base, ...(deps === 'tarballs' ? { tricksSpecs: tarballs } : {}) };
    files = opts.kind === 'plugin' ? pluginFiles(vars) : presetFiles(vars);
    for (const [rel, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, rel)), { recursive: true });
      writeFileSync(join(root, rel), text);
    }
  };
  const written = () => [...Object.keys(files), ...Object.values(tarballs).map((spec) => spec.slice('file:'.length))];
  if (exists && opts.force) {
    // Replace the scaffold's files one by one (each by rename), keeping whatever else is there.
    try {
      write(tmp);
      for (const rel of written()) {
        mkdirSync(dirname(join(dir, rel)), { recursive: true });
        renameSync(join(tmp, rel), join(dir, rel));
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  } else {
    mkdirSync(dirname(dir), { recursive: true });
    try {
      write(tmp);
      if (exists) rmSync(dir, { recursive: true }); // empty
      renameSync(tmp, dir);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  }
  const shortNameResolves =
    base.packageName === `@tricks/${opts.kind}-${base.name}` || base.packageName === `tricks-${opts.kind}-${base.name}`;
  return {
    dir,
    name: base.name,
    packageName: base.packageName,
    files: written(),
    shortNameResolves,
    deps,
    ...(deps === 'workspace' ? { workspaceRoot: workspaceRoot(dir) } : {}),
    tarballs,
  };
}
