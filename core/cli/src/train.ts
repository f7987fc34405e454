import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { createStandardTrainer, loadLadder } from '@tricks/lab';
import { progressBuiltin } from './progress.js';
import { addDataFlags, checkDataFlags, collect, dataOptionsFromFlags, type DataFlags } from './data-options.js';
import {
  TricksError,
  completeDir,
  type ResolvedConfig,
  type UserConfig,
  type Logger,
  loadConfigFile,
  merge,
  type PluginItem,
  parsePluginFlag,
} from '@tricks/core';

export const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new TricksError(`option ${name}: "${v}" is not an integer`);
  return n;
};
export const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new TricksError(`option ${name}: "${v}" is not a number`);
  return n;
};

export interface TrainFlags extends DataFlags {
  preset?: string;
  plugin: string[];
  config?: string;
  data?: string;
  model?: string;
  epochs?: number;
  batchSize?: number;
  gradAccum?: number;
  lr?: number;
  optimizer?: string;
  schedule?: string;
  seed?: number;
  backend?: string;
  out?: string;
  resume?: string;
  limitTrain?: number;
  limitVal?: number;
  steps?: number;
  valSplit?: number;
  strict?: boolean;
  checkpoint?: boolean;
  onDivergence?: 'warn' | 'stop' | 'off';
  interpret?: boolean;
}

/** Options shared by train, ablate and sweep. */
export function addTrainOptions(cmd: Command): Command {
  cmd
    .option(
      '--preset <name>',
      'a preset: short name (quickstart), package name, or path. `train` trains its full recipe: every rung of its ladder (tricks ablate runs them one by one)',
    )
    .option('--plugin <name[=json]>', 'add a plugin, with options as JSON: --plugin \'mixup={"alpha":0.2}\' (repeatable)', collect, [])
    .option('--config <file>', 'a config file (default: tricks.config.json, .mjs or .js in the current directory)')
    .option('--data <spec>', 'dataset: digits, fashion-mnist[:DIR], mnist:DIR, cifar10:DIR, cifar100:DIR, folder:DIR');
  return addDataFlags(cmd)
    .option('--model <name>', 'backbone name (see `tricks model list`)')
    .option('--epochs <n>', 'epochs', int('--epochs'))
    .option('--batch-size <n>', 'batch size', int('--batch-size'))
    .option(
      '--grad-accum <n>',
      'compute each batch as n micro-batches and accumulate their gradients (the batch size stays the effective batch; default: as the backend memory needs)',
      int('--grad-accum'),
    )
    .option('--lr <lr>', 'base learning rate', num('--lr'))
    .option('--optimizer <name>', 'sgd, adam, adamw, ...')
    .option('--schedule <name>', 'learning-rate schedule: constant, cosine, onecycle, step, ...')
    .option('--seed <n>', 'random seed', int('--seed'))
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']))
    .option('--limit-train <n>', 'use only n training items', int('--limit-train'))
    .option('--limit-val <n>', 'use only n validation items', int('--limit-val'))
    .option('--steps <n>', 'at most n steps per epoch', int('--steps'))
    .option('--val-split <f>', 'validation fraction when the data has no split', num('--val-split'))
    .option('--strict', 'fail on unreadable images instead of skipping them')
    .addOption(
      new Option('--on-divergence <what>', 'when the training loss diverges: warn once (default), stop the run, or off').choices([
        'warn',
        'stop',
        'off',
      ]),
    )
    .option('--no-checkpoint', 'do not write checkpoints')
    .option('--no-interpret', 'report.html without its interpretation (top losses, most confused, Grad-CAM): report.interpret false');
}

/** Flags -> a user config, over the config file. */
export async function configFromFlags(f: TrainFlags): Promise<UserConfig> {
  const file = await loadConfigFile(f.config);
  const fromFlags: UserConfig = {
    preset: f.preset,
    data: f.data,
    model: f.model,
    epochs: f.epochs,
    batchSize: f.batchSize,
    gradAccum: f.gradAccum,
    seed: f.seed,
    backend: f.backend,
    out: f.out,
    checkpoint: f.checkpoint === false ? false : undefined,
    divergence: f.onDivergence,
    report: f.interpret === false ? { interpret: false } : undefined,
  };
  if (f.lr !== undefined || f.optimizer)
    fromFlags.optimizer = { ...(f.optimizer ? { name: f.optimizer } : {}), ...(f.lr !== undefined ? { lr: f.lr } : {}) };
  if (f.schedule) fromFlags.schedule = { name: f.schedule };
  if (f.limitTrain || f.limitVal || f.steps) fromFlags.limit = { train: f.limitTrain, val: f.limitVal, steps: f.steps };
  const dataOptions = { valSplit: f.valSplit, strict: f.strict || undefined, ...dataOptionsFromFlags(f) };
  if (Object.values(dataOptions).some((v) => v !== undefined)) fromFlags.dataOptions = dataOptions;
  const base: UserConfig = file?.config ?? {};
  const merged = merge(base, fromFlags) as UserConfig;
  if (f.preset && base.preset && f.preset !== base.preset) merged.preset = f.preset;
  const flagPlugins: PluginItem[] = f.plugin.map(parsePluginFlag);
  merged.plugins = [...(base.plugins ?? []), ...flagPlugins];
  return merged;
}

/** A run directory's saved config, as a user config (presets already flattened into plugins). */
export async function configFromCheckpoint(out: string): Promise<UserConfig> {
  const dir = completeDir(join(out, 'checkpoint'));
  if (!dir)
    throw new TricksError(
      `--resume ${out}: no checkpoint/ in that directory`,
      'give the --out directory of a run that finished at least one epoch',
    );
  const state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { config: ResolvedConfig };
  const { presets: _p, plugins, ...settings } = state.config;
  return {
    ...settings,
    plugins: plugins.map((p) => [p.source.startsWith('.') || p.source.startsWith('/') ? p.source : p.name, p.options, p.key] as PluginItem),
  };
}

/** Says that a preset with a ladder trains with every rung, and names them. */
async function logRecipe(preset: string, logger: Logger): Promise<void> {
  const ladder = await loadLadder(preset).then(
    (l) => l.ladder,
    () => [],
  );
  if (ladder.length > 1)
    logger.info(
      `preset ${preset}: its full recipe, every rung of its ladder (${ladder.map((r) => r.name).join(', ')}); \`tricks ablate --preset ${preset}\` trains them one by one`,
    );
}

export function registerTrainCommand(program: Command): void {
  addTrainOptions(program.command('train').description('train a model'))
    .option('--out <dir>', 'output directory (default runs/<timestamp>)')
    .option('--resume <dir>', 'continue the run in <dir> from its last checkpoint')
    .action(async (f: TrainFlags) => {
      let user: UserConfig;
      if (f.resume) {
        user = await configFromCheckpoint(f.resume);
        user.out = resolve(f.resume);
      } else user = await configFromFlags(f);
      const trainer = await createStandardTrainer(user, { builtins: [progressBuiltin] });
      if (!f.resume) checkDataFlags(trainer.datasets, trainer.config.data, f);
      if (!f.resume && user.preset) await logRecipe(user.preset, trainer.logger);
      const result = await trainer.run({ resume: Boolean(f.resume), handleSignals: true });
      const last = result.epochs.at(-1);
      process.stdout.write(
        `${JSON.stringify({ out: result.out, val_top1: last?.val_top1, val_top5: last?.val_top5, epochs: result.epochs.length, stopped: result.stopped })}\n`,
      );
    });
}
