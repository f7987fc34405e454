// The package graph's rules (docs/architecture.md, "Packages and arrows"), checked over package.json
// files and the import statements of every TypeScript source. `node scripts/arrows.mjs` prints the
// violations (exit 1 if any); test/arrows.test.ts runs the same check in `npm test`.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { root, packageDirs, readPackage } from './packages.mjs';

const CORE = '@tricks/core';
/** Runtime dependencies @tricks/core may have: nothing heavier than these. */
export const CORE_DEPS = [
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-layers',
  'ajv',
  'fastest-levenshtein',
  'inversify',
  'reflect-metadata',
  'semver',
  'tapable',
];

const IMPORT = /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[\w*\s{},$]*?\s+from\s+)?'([^']+)'|import\(\s*'([^']+)'\s*\)/g;

function sources(dir, sub) {
  const d = join(root, dir, sub);
  if (!existsSync(d)) return [];
  return readdirSync(d, { recursive: true })
    .map(String)
    .filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.split(sep).includes('node_modules') && !f.split(sep).includes('fixtures'),
    )
    .map((f) => join(d, f));
}

/** Import specifiers of a file (the template strings of scaffolds are not imports: only statement starts count). */
export function importsOf(file) {
  const text = readFileSync(file, 'utf8').replace(/`(?:\\[\s\S]|[^\\`])*`/g, '``');
  const out = [];
  for (const m of text.matchAll(IMPORT)) out.push(m[1] ?? m[2]);
  return out;
}

const pkgName = (spec) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);

export function check() {
  const problems = [];
  const dirs = packageDirs();
  const pkgs = new Map(dirs.map((d) => [readPackage(d).name, { dir: d, pkg: readPackage(d) }]));
  const deps = (pkg, dev = true) => ({
    ...pkg.dependencies,
    ...pkg.peerDependencies,
    ...pkg.optionalDependencies,
    ...(dev ? pkg.devDependencies : {}),
  });

  // 1. The workspace graph (every kind of dependency) has no circle and every package reaches @tricks/core.
  const edges = new Map([...pkgs].map(([n, { pkg }]) => [n, Object.keys(deps(pkg)).filter((d) => pkgs.has(d))]));
  const state = new Map();
  const visit = (n, path) => {
    if (state.get(n) === 2) return;
    if (state.get(n) === 1) {
      problems.push(`package circle: ${[...path.slice(path.indexOf(n)), n].join(' -> ')}`);
      return;
    }
    state.set(n, 1);
    for (const m of edges.get(n) ?? []) visit(m, [...path, n]);
    state.set(n, 2);
  };
  for (const n of pkgs.keys()) visit(n, []);

  for (const [name, { dir, pkg }] of pkgs) {
    const runtime = Object.keys(deps(pkg, false));
    // 2. Nothing depends on the CLI (it is the top), and no plugin depends on another plugin at run time.
    // (The private end-to-end package, test/, drives the CLI: it is the one exception.)
    if (dir !== 'test')
      for (const d of Object.keys(deps(pkg)))
        if (d === '@tricks/cli') problems.push(`${name} depends on @tricks/cli: nothing may import the CLI`);
    if (dir.startsWith('plugins/'))
      for (const d of runtime)
        if (d.startsWith('@tricks/plugin-'))
          problems.push(`${name} depends on the plugin ${d} at run time: share code through a helper-* package`);
    // 3. @tricks/core stays small: no product, no heavy dependency.
    if (name === CORE)
      for (const d of runtime)
        if (!CORE_DEPS.includes(d)) problems.push(`${CORE} depends on ${d}: the trainer takes only ${CORE_DEPS.join(', ')}`);
    // 4. Imports: what src imports is a declared runtime dependency; tests may also use dev dependencies; no relative import leaves the package.
    for (const [sub, allowed] of [
      ['src', runtime],
      ['test', Object.keys(deps(pkg))],
    ]) {
      const files =
        dir === 'test' ? (sub === 'src' ? [] : sources(dir, '.').filter((f) => !f.includes(`${sep}dist${sep}`))) : sources(dir, sub);
      for (const f of files) {
        for (const spec of importsOf(f)) {
          if (spec.startsWith('.')) {
            const target = resolve(dirname(f), spec);
            if (!target.startsWith(join(root, dir) + sep))
              problems.push(`${relative(root, f)} imports ${spec}, outside its package ${dir}`);
            continue;
          }
          if (spec.startsWith('node:')) continue;
          const p = pkgName(spec);
          if (p === name) continue;
          if (p.startsWith('@tricks/') && !allowed.includes(p))
            problems.push(
              `${relative(root, f)} imports ${spec}, which ${name} does not declare in its ${sub === 'src' ? 'dependencies or peerDependencies' : 'package.json'}`,
            );
        }
      }
    }
    // 5. No import circle between the files of a package, not even a type-only one.
    const files = [...sources(dir, 'src')];
    const graph = new Map(
      files.map((f) => [
        f,
        importsOf(f)
          .filter((s) => s.startsWith('.'))
          .map((s) => resolve(dirname(f), s).replace(/\.js$/, '.ts'))
          .filter((t) => graph0(files, t)),
      ]),
    );
    const st = new Map();
    const walk = (f, path) => {
      if (st.get(f) === 2) return;
      if (st.get(f) === 1) {
        problems.push(
          `import circle in ${name}: ${[...path.slice(path.indexOf(f)), f].map((x) => relative(join(root, dir), x)).join(' -> ')}`,
        );
        return;
      }
      st.set(f, 1);
      for (const t of graph.get(f) ?? []) walk(t, [...path, f]);
      st.set(f, 2);
    };
    for (const f of files) walk(f, []);
  }
  return problems;
}
const graph0 = (files, t) => files.includes(t);

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const problems = check();
  for (const p of problems) console.log(p);
  console.log(problems.length ? `${problems.length} problem(s)` : 'arrows: every dependency points toward @tricks/core');
  process.exit(problems.length ? 1 : 0);
}
