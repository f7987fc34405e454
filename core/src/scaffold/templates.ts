/**
 * The files `tricks new plugin NAME` and `tricks new preset NAME` write. Each template is a function of
 * the names and version ranges, so what a scaffold holds is plain to read here and easy to test.
 */

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
  /** Range of the @tricks/* packages released with this core: @tricks/plugin-test-utils, the plugins a preset lists. */
  tricksRange: string;
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

const FENCE = '```';
/** A single-quoted TypeScript string literal. */
const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

function packageJson(v: TemplateVars, kind: 'plugin' | 'preset', extra: { dependencies?: Record<string, string>; peer?: Record<string, string> }) {
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
      test: "mocha 'dist/test/**/*.test.js'",
      prepublishOnly: 'npm run build',
    },
    ...(extra.dependencies ? { dependencies: extra.dependencies } : {}),
    peerDependencies: { '@tricks/core': v.coreRange, ...(extra.peer ?? {}) },
    devDependencies: sortKeys({
      '@tricks/core': v.coreRange,
      '@tricks/plugin-test-utils': v.tricksRange,
      ...(extra.peer ?? {}),
      ...DEV_TOOLS,
    }),
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

const gitignore = () => 'node_modules/\ndist/\n*.tgz\nruns/\n';

// ---------------------------------------------------------------------------------------------- plugin

const pluginIndex = (v: TemplateVars) => `import * as tf from '@tensorflow/tfjs-core';
import { definePlugin, STAGE_REGULARIZE, STAGE_REPORT, type JSONSchema } from '@tricks/core';

/** The plugin's short name: what a config lists, and the name of every tap and loss term it adds. */
export const PLUGIN_NAME = ${q(v.name)};

export interface Options {
  /** Weight of the z-loss term. */
  weight: number;
}

/** Options are validated (and defaults filled in) before training starts. */
export const schema: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    weight: { type: 'number', minimum: 0, maximum: 1, default: 1e-4, description: 'weight of mean(logsumexp(logits)^2) in the loss' },
  },
};

/**
 * The example trick, z-loss (PaLM, Chowdhery et al. 2022, section 5): weight * mean(logsumexp(logits)^2)
 * keeps the softmax normalizer near 1, so logits do not drift. Replace it with your own trick.
 */
export function zLoss(logits: tf.Tensor2D, weight: number): tf.Scalar {
  return tf.mul(weight, tf.mean(tf.square(tf.logSumExp(logits, 1)))) as tf.Scalar;
}

export default definePlugin<Options>({
  name: PLUGIN_NAME,
  description: ${q(v.description)},
  schema,
  apply(api, options) {
    // 1. loss (SyncWaterfallHook, inside the step's tf.tidy): add a named term; the trainer minimizes the sum.
    api.hooks.loss.tap({ name: PLUGIN_NAME, stage: STAGE_REGULARIZE }, (state) => ({
      ...state,
      terms: { ...state.terms, [PLUGIN_NAME]: zLoss(state.logits, options.weight) },
    }));
    // 2. epoch (AsyncSeriesHook, after evaluation): report the last step's term next to the other metrics.
    api.hooks.epoch.tapPromise({ name: PLUGIN_NAME, stage: STAGE_REPORT }, async (ctx, metrics) => {
      metrics[PLUGIN_NAME] = ctx.lastTerms[PLUGIN_NAME];
      ctx.logger.info(PLUGIN_NAME + ': term ' + ctx.lastTerms[PLUGIN_NAME].toExponential(3) + ' at the end of epoch ' + metrics.epoch);
    });
  },
});
`;

const pluginTest = (v: TemplateVars) => `import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { assertHookOrder, assertNoLeak, assertOptionError, cleanup, runSteps, useTestBackend } from '@tricks/plugin-test-utils';
import { PLUGIN_NAME, zLoss } from '../src/index.js';

// The built entry point: the shared runner loads the plugin by path, as the trainer would load the package.
const PLUGIN = fileURLToPath(new URL('../src/index.js', import.meta.url));

describe(${q(v.name)}, function () {
  this.timeout(120000);
  before(() => useTestBackend());

  it('computes weight * mean(logsumexp(logits)^2)', () => {
    // Row 1: logsumexp(0, 0) = ln 2. Row 2: logsumexp(ln 3, 0) = ln 4.
    const value = tf.tidy(() => zLoss(tf.tensor2d([[0, 0], [Math.log(3), 0]]), 0.5).dataSync()[0]);
    expect(value).to.be.closeTo(0.5 * (Math.LN2 ** 2 + Math.log(4) ** 2) / 2, 1e-6);
  });

  it('adds its loss term every step and reports it at the end of the epoch, leaking no tensor', async () => {
    const run = await runSteps({ plugins: [[PLUGIN, { weight: 0.01 }]], steps: 4 });
    try {
      assertHookOrder(run, PLUGIN_NAME, ['loss', 'epoch']);
      expect(run.calls.filter((c) => c === 'loss:' + PLUGIN_NAME)).to.have.length(4);
      const term = run.trainer.ctx.lastTerms[PLUGIN_NAME];
      expect(term).to.be.greaterThan(0);
      expect(run.result.epochs[0][PLUGIN_NAME]).to.equal(term);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });

  it('validates its options', async () => {
    await assertOptionError(PLUGIN, { weight: -1 }, /weight/);
    await assertOptionError(PLUGIN, { wieght: 0.1 }, /did you mean "weight"/);
  });
});
`;

const pluginReadme = (v: TemplateVars) => `# ${v.packageName}

${v.description}

A plugin for [tricks](https://www.npmjs.com/package/@tricks/core), the TensorFlow.js trainer where every
trick of the image-classification bag of tricks is a plugin.

## Use

${FENCE}sh
npm install @tricks/core ${v.packageName}
npx tricks train --plugin '${v.name}={"weight":0.0001}'
${FENCE}

or in \`tricks.config.json\`:

${FENCE}json
{ "plugins": [["${v.name}", { "weight": 0.0001 }]] }
${FENCE}

## Options

| option | type | default | meaning |
|---|---|---|---|
| weight | number in [0, 1] | 0.0001 | weight of mean(logsumexp(logits)^2) in the loss |

## Hooks

| hook | stage | what it does |
|---|---|---|
| loss | STAGE_REGULARIZE | adds the term \`${v.name}\` |
| epoch | STAGE_REPORT | writes the last step's term to the epoch's metrics as \`${v.name}\` |

## Reference

Chowdhery et al., *PaLM: Scaling Language Modeling with Pathways*, 2022, section 5 (z-loss).

## Result

Measure it before you publish: \`tricks train\` with and without the plugin, same seed, and put the
numbers here.

## Develop

${FENCE}sh
npm install
npm run build
npm test        # the shared runner, @tricks/plugin-test-utils: a few steps, hook order, leaks, options
npm publish
${FENCE}

Compatibility: the \`@tricks/core\` range in \`peerDependencies\` (${v.coreRange}) is checked when the plugin
loads; a core outside it fails early, naming both versions.
`;

export function pluginFiles(v: TemplateVars): Record<string, string> {
  return {
    'package.json': packageJson(v, 'plugin', { peer: { '@tensorflow/tfjs-core': v.tfRange } }),
    'tsconfig.json': tsconfig(),
    '.gitignore': gitignore(),
    'src/index.ts': pluginIndex(v),
    'test/index.test.ts': pluginTest(v),
    'README.md': pluginReadme(v),
  };
}

// ---------------------------------------------------------------------------------------------- preset

/** The plugin the example preset lists, and its package (a dependency of the preset). */
export const PRESET_EXAMPLE_PLUGIN = { name: 'label-smoothing', package: '@tricks/plugin-label-smoothing', options: { epsilon: 0.1 } };

const presetIndex = (v: TemplateVars) => `import { definePreset, type PresetDefinition } from '@tricks/core';

/**
 * A preset is data: plugins with their options, other presets, and trainer settings. A user's config
 * overrides any of it. Plugins listed here must be dependencies of this package.
 */
const preset: PresetDefinition = {
  name: ${q(v.name)},
  description: ${q(v.description)},
  plugins: [[${q(PRESET_EXAMPLE_PLUGIN.name)}, { epsilon: ${PRESET_EXAMPLE_PLUGIN.options.epsilon} }]],
  settings: {
    model: { name: 'small-cnn' },
    optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 5e-4 },
    schedule: { name: 'cosine' },
    epochs: 5,
    batchSize: 64,
  },
};

export default definePreset(preset);
`;

const presetTest = (v: TemplateVars) => `import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { assertNoLeak, cleanup, runSteps, tapsOf, useTestBackend } from '@tricks/plugin-test-utils';

const PRESET = fileURLToPath(new URL('../src/index.js', import.meta.url));

describe(${q(`preset ${v.name}`)}, function () {
  this.timeout(120000);
  before(() => useTestBackend());

  it('resolves its plugins and settings and trains a few steps', async () => {
    // The shared runner's tiny config (small model, 256 digits) sits on top of the preset, as a user's would.
    const run = await runSteps({ config: { preset: PRESET }, steps: 4 });
    try {
      expect(run.trainer.config.plugins.map((p) => p.name)).to.deep.equal([${q(PRESET_EXAMPLE_PLUGIN.name)}]);
      expect(tapsOf(run.calls, 'loss')).to.include(${q(PRESET_EXAMPLE_PLUGIN.name)});
      expect(run.trainer.config.optimizer.lr).to.equal(0.1);
      expect(run.trainer.config.schedule.name).to.equal('cosine');
      expect(Number.isFinite(run.result.epochs[0].train_loss)).to.equal(true);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });
});
`;

const presetReadme = (v: TemplateVars) => `# ${v.packageName}

${v.description}

A preset for [tricks](https://www.npmjs.com/package/@tricks/core): plugins with their options and trainer
settings, composed the way Babel composes presets (plugins before presets; your config wins).

## Use

${FENCE}sh
npm install @tricks/core ${v.packageName}
npx tricks train --preset ${v.name}
${FENCE}

## What it sets

| | |
|---|---|
| plugins | ${PRESET_EXAMPLE_PLUGIN.name} (epsilon 0.1) |
| model | small-cnn |
| optimizer | sgd, lr 0.1, momentum 0.9, weight decay 5e-4 |
| schedule | cosine |
| epochs, batch size | 5, 64 |

## Develop

${FENCE}sh
npm install
npm run build
npm test        # the shared runner, @tricks/plugin-test-utils
npm publish
${FENCE}
`;

export function presetFiles(v: TemplateVars): Record<string, string> {
  return {
    'package.json': packageJson(v, 'preset', { dependencies: { [PRESET_EXAMPLE_PLUGIN.package]: v.tricksRange } }),
    'tsconfig.json': tsconfig(),
    '.gitignore': gitignore(),
    'src/index.ts': presetIndex(v),
    'test/index.test.ts': presetTest(v),
    'README.md': presetReadme(v),
  };
}
