import '@tensorflow/tfjs-backend-cpu'; // building a model needs a backend; summary never runs one
import { Command, Option } from 'commander';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  createHooks,
  tapOnly,
  TricksError,
  ModelRegistry,
  type PluginDefinition,
  type ResolvedConfig,
  parsePluginFlag,
  load,
  validate,
} from '@tricks/core';
import { modelCost, type ModelCost } from '@tricks/models';
import { cliServices } from './services.js';
import { int } from './flags.js';

export interface SummaryOptions {
  input: number;
  channels: number;
  classes: number;
  plugins: string[];
  options?: Record<string, unknown>;
  registry?: ModelRegistry;
  cwd?: string;
}

/** Builds a registered model (with the block/neck taps of the given plugins) without running it. */
export async function buildForSummary(name: string, o: SummaryOptions): Promise<LayersModel> {
  const registry = o.registry ?? (await cliServices({ user: {} })).models;
  const hooks = createHooks();
  const facades = tapOnly(hooks);
  for (const flag of o.plugins) {
    const item = parsePluginFlag(flag);
    const [pluginName, options] = typeof item === 'string' ? [item, {}] : [item[0], { ...(item[1] ?? {}) }];
    const { definition } = await load<PluginDefinition>(pluginName, 'plugin', o.cwd);
    if (definition.schema) validate(definition.schema, options, `plugin ${pluginName}`, 'options');
    definition.apply({ hooks: facades, config: {} as ResolvedConfig, registerState: () => {} }, options);
  }
  return registry.build(name, { inputShape: [o.input, o.input, o.channels], numClasses: o.classes, options: o.options }, hooks);
}

const fmt = (n: number) => n.toLocaleString('en-US');
const giga = (n: number) => (n / 1e9).toFixed(3);

/** The summary table: one row per layer (name, class, output shape, parameters, MACs), then the totals. */
export function formatSummary(model: LayersModel, cost: ModelCost = modelCost(model)): string {
  const rows = cost.layers.map((l) => [
    l.name,
    l.className,
    JSON.stringify(l.outputShape).replace(/null/g, 'N'),
    fmt(l.params),
    l.macs ? fmt(l.macs) : '',
  ]);
  const head = ['layer', 'class', 'output', 'params', 'MACs'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i >= 3 ? c.padStart(w[i]) : c.padEnd(w[i])))
      .join('  ')
      .trimEnd();
  return [
    line(head),
    line(w.map((n) => '-'.repeat(n))),
    ...rows.map(line),
    '',
    `model ${model.name}: ${cost.layers.length} layers`,
    `trainable parameters: ${fmt(cost.params)} (${(cost.params / 1e6).toFixed(2)}M); non-trainable (BN statistics): ${fmt(cost.nonTrainable)}`,
    `multiply-accumulates per image: ${fmt(cost.macs)} (${giga(cost.macs)} GMACs = ${giga(2 * cost.macs)} GFLOPs counting multiply and add)`,
  ].join('\n');
}

/** `tricks model list` and `tricks model summary NAME [--input 224] [--classes 1000] [--plugin se-block]`. */
export function registerModelCommand(program: Command): void {
  const model = program.command('model').description('the model zoo: list the backbones, or print one with its parameters and FLOPs');
  model
    .command('list')
    .description('list the registered models')
    .action(async () => {
      const entries = (await cliServices()).models.list();
      const w = Math.max(...entries.map((e) => e.name.length));
      process.stdout.write(entries.map((e) => `${e.name.padEnd(w)}  ${e.description}`).join('\n') + '\n');
    });
  model
    .command('summary')
    .description('build a model (without running it) and print its layers, parameters and multiply-accumulates')
    .argument('<name>', 'a registered model (see `tricks model list`)')
    .addOption(new Option('--input <size>', 'input height and width').default(224).argParser(int('--input', 1)))
    .addOption(new Option('--channels <n>', 'input channels').default(3).argParser(int('--channels', 1)))
    .addOption(new Option('--classes <n>', 'number of classes').default(1000).argParser(int('--classes', 1)))
    .option('--options <json>', 'model options as JSON, e.g. \'{"variant":"d","zeroGamma":true}\'')
    .option(
      '--plugin <name[=json]>',
      "apply a plugin's block/neck taps (repeatable), e.g. se-block or 'fpn={\"levels\":4}'",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--json', 'print the summary as JSON')
    .action(
      async (name: string, f: { input: number; channels: number; classes: number; options?: string; plugin: string[]; json?: boolean }) => {
        let options: Record<string, unknown> | undefined;
        if (f.options) {
          try {
            options = JSON.parse(f.options);
          } catch (e) {
            throw new TricksError(`--options ${f.options}: not valid JSON (${(e as Error).message})`, `e.g. --options '{"variant":"d"}'`);
          }
        }
        const m = await buildForSummary(name, { input: f.input, channels: f.channels, classes: f.classes, plugins: f.plugin, options });
        try {
          const cost = modelCost(m);
          process.stdout.write(
            f.json
              ? JSON.stringify(
                  {
                    model: name,
                    input: f.input,
                    classes: f.classes,
                    plugins: f.plugin,
                    params: cost.params,
                    macs: cost.macs,
                    layers: cost.layers,
                  },
                  null,
                  1,
                ) + '\n'
              : formatSummary(m, cost) + '\n',
          );
        } finally {
          m.dispose();
        }
      },
    );
}
