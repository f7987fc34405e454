/**
 * The files `tricks new plugin NAME` and `tricks new preset NAME` write: package.json and tsconfig.json are
 * built here; the sources, tests and README are real files in core/create/templates/ with {{var}} placeholders.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface TemplateVars {
  /** Short name: the plugin's name in a config (`plugins: ["NAME"]`) and on every tap. */
  name: string;
  /** npm package name, e.g. tricks-plugin-NAME or @tricks/plugin-NAME. */
  packageName: string;
  description: string;
  /** Range of @tricks/core the package works with (its peerDependency, the source of truth at load). */
  coreRange: string;
  /** Range of @tensorflow/tfjs-core, the one core depends on. */
  tfRange: string;
  /** Range of the @tricks/* packages released with this core: @tricks/helper-plugin-test-runner, the plugins a preset lists. */
  tricksRange: string;
  /**
   * Install specs that replace the ranges of @tricks/* packages in dependencies and devDependencies
   * (`file:vendor/tricks/….tgz` when the scaffold packed them); packages named here and not listed
   * otherwise are added as devDependencies, so npm finds every @tricks/* package the others need.
   */
  tricksSpecs?: Record<string, string>;
}

/** The toolchain a scaffolded package builds and tests with (the versions this repository uses). */
export const DEV_TOOLS: Record<string, string> = {
  '@types/chai': '^5.2.3',
  '@types/mocha': '^10.0.10',
  '@types/node': '^20.19.43',
  chai: '^6.3.0',
  mocha: '^12.0.3',
  typescript: '^7.0.2',
};

/** A single-quoted TypeScript string literal. */
const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

function packageJson(
  v: TemplateVars,
  kind: 'plugin' | 'preset',
  extra: { dependencies?: Record<string, string>; peer?: Record<string, string> },
) {
  const specs = v.tricksSpecs ?? {};
  const spec = (deps: Record<string, string>) => Object.fromEntries(Object.entries(deps).map(([k, r]) => [k, specs[k] ?? r]));
  const dependencies = extra.dependencies ? spec(extra.dependencies) : undefined;
  const others = Object.fromEntries(Object.entries(specs).filter(([k]) => !dependencies?.[k]));
  return json({
    name: v.packageName,
    version: '0.1.0',
    description: v.description,
    type: 'module',
    keywords: [`tricks-${kind}`, 'tricks', 'tensorflowjs', 'image-classification'],
    license: 'MIT',
    main: './dist/src/index.js',
    types: './dist/src/index.d.ts',
    exports: { '.': { types: './dist/src/index.d.ts', default: './dist/src/index.js' }, './package.json': './package.json' },
    files: ['dist/src', 'README.md'],
    engines: { node: '>=20' },
    scripts: {
      build: 'tsc -p .',
      test: "npm run build && mocha 'dist/test/**/*.test.js'",
      prepublishOnly: 'npm run build',
    },
    ...(dependencies ? { dependencies } : {}),
    peerDependencies: { '@tricks/core': v.coreRange, ...(extra.peer ?? {}) },
    devDependencies: sortKeys({
      ...others,
      ...spec({ '@tricks/core': v.coreRange, '@tricks/helper-plugin-test-runner': v.tricksRange, ...(extra.peer ?? {}) }),
      ...DEV_TOOLS,
    }),
    // Every @tricks/* edge in the tree (core's, the runner's, ...) takes the root's spec, the tarball:
    // npm then never asks a registry for them.
    ...(Object.keys(specs).length ? { overrides: sortKeys(Object.fromEntries(Object.keys(specs).map((k) => [k, `$${k}`]))) } : {}),
  });
}

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

/** A standalone tsconfig: NodeNext ESM, strict, declarations; src and test compile to dist/. */
export const tsconfig = () =>
  json({
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      declaration: true,
      sourceMap: true,
      skipLibCheck: true,
      rootDir: '.',
      outDir: 'dist',
      types: ['node', 'mocha'],
    },
    include: ['src/**/*.ts', 'test/**/*.ts'],
  });

/** The template files (core/create/templates/KIND/...): real files, with {{var}} placeholders. */
const TEMPLATES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'templates');

/** Reads templates/KIND/FILE and fills in its {{var}} placeholders (`...Literal`: as a quoted TS string). */
function render(kind: 'plugin' | 'preset', file: string, v: TemplateVars): string {
  const vars: Record<string, string> = {
    name: v.name,
    packageName: v.packageName,
    description: v.description,
    coreRange: v.coreRange,
    tfRange: v.tfRange,
    tricksRange: v.tricksRange,
    nameLiteral: q(v.name),
    descriptionLiteral: q(v.description),
    presetTitleLiteral: q(`preset ${v.name}`),
  };
  return readFileSync(join(TEMPLATES, kind, file), 'utf8').replace(/\{\{(\w+)\}\}/g, (m, k: string) => vars[k] ?? m);
}

const TEXT_FILES = {
  '.gitignore': 'gitignore',
  'src/index.ts': 'src/index.ts',
  'test/index.test.ts': 'test/index.test.ts',
  'README.md': 'README.md',
};
const texts = (kind: 'plugin' | 'preset', v: TemplateVars) =>
  Object.fromEntries(Object.entries(TEXT_FILES).map(([to, from]) => [to, render(kind, from, v)]));

export function pluginFiles(v: TemplateVars): Record<string, string> {
  return {
    'package.json': packageJson(v, 'plugin', { peer: { '@tensorflow/tfjs-core': v.tfRange } }),
    'tsconfig.json': tsconfig(),
    ...texts('plugin', v),
  };
}

export const PRESET_EXAMPLE_PLUGIN = { name: 'label-smoothing', package: '@tricks/plugin-label-smoothing', options: { epsilon: 0.1 } };

export function presetFiles(v: TemplateVars): Record<string, string> {
  return {
    'package.json': packageJson(v, 'preset', { dependencies: { [PRESET_EXAMPLE_PLUGIN.package]: v.tricksRange } }),
    'tsconfig.json': tsconfig(),
    ...texts('preset', v),
  };
}
