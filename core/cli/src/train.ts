import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { createStandardTrainer, loadLadder } from '@tricks/lab';
import { progressBuiltin } from './progress.js';
import { addDataFlags, checkDataFlags, collect, dataOptionsFromFlags, type DataFlags } from './data-options.js';
import { DirCheckpointer } from '@tricks/checkpoint';
import {
  ConsoleLogger,
  TricksError,
  type ResolvedConfig,
  type UserConfig,
  type Logger,
  loadConfigFile,
  merge,
  type PluginItem,
  parsePluginFlag,
} from '@tricks/core';
import { folder, int, num } from './flags.js';
import { checkWritable } from './errors.js';

export interface TrainFlags extends DataFlags {
  initFrom?: string;
  pretrained?: boolean;
  overwrite?: boolean;
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
    .option('--pretrained', "start from torchvision's published weights of --model (downloaded once into TRICKS_CACHE, SHA-256 checked)")
    .option(
      '--init-from <path>',
      'start from pretrained weights: a `tricks convert` folder or a .pth/.pt/.safetensors checkpoint (converted in memory); a new head when the class count differs',
    )
    .option('--epochs <n>', 'epochs', int('--epochs', 1))
    .option('--batch-size <n>', 'batch size', int('--batch-size', 1))
    .option(
      '--grad-accum <n>',
      'compute each batch as n micro-batches and accumulate their gradients (the batch size stays the effective batch; default: as the backend memory needs)',
      int('--grad-accum', 1),
    )
    .option('--lr <lr>', 'base learning rate', num('--lr', 0))
    .option('--optimizer <name>', 'sgd, adam, adamw, ...')
    .option('--schedule <name>', 'learning-rate schedule: constant, cosine, onecycle, step, ...')
    .option('--seed <n>', 'random seed', int('--seed'))
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']))
    .option('--limit-train <n>', 'use only n training items', int('--limit-train', 1))
    .option('--limit-val <n>', 'use only n validation items', int('--limit-val', 1))
    .option('--steps <n>', 'at most n steps per epoch', int('--steps', 1))
    .option('--val-split <f>', 'validation fraction when the data has no split', num('--val-split', 0, 1))
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

/** The settings the flags give, without the config file, the preset and the plugins. */
function flagSettings(f: TrainFlags): UserConfig {
  const s: UserConfig = {
    data: f.data,
    model: f.model,
    epochs: f.epochs,
    batchSize: f.batchSize,
    gradAccum: f.gradAccum,
    seed: f.seed,
    backend: f.backend,
    checkpoint: f.checkpoint === false ? false : undefined,
    divergence: f.onDivergence,
    report: f.interpret === false ? { interpret: false } : undefined,
    initFrom: f.initFrom,
    pretrained: f.pretrained || undefined,
  };
  if (f.lr !== undefined || f.optimizer)
    s.optimizer = { ...(f.optimizer ? { name: f.optimizer } : {}), ...(f.lr !== undefined ? { lr: f.lr } : {}) };
  if (f.schedule) s.schedule = { name: f.schedule };
  if (f.limitTrain !== undefined || f.limitVal !== undefined || f.steps !== undefined)
    s.limit = { train: f.limitTrain, val: f.limitVal, steps: f.steps };
  const dataOptions = { valSplit: f.valSplit, strict: f.strict || undefined, ...dataOptionsFromFlags(f) };
  if (Object.values(dataOptions).some((v) => v !== undefined)) s.dataOptions = dataOptions;
  return s;
}

/** Flags -> a user config, over the config file. */
export async function configFromFlags(f: TrainFlags): Promise<UserConfig> {
  const file = await loadConfigFile(f.config);
  const base: UserConfig = file?.config ?? {};
  const merged = merge(base, { preset: f.preset, out: f.out, ...flagSettings(f) }) as UserConfig;
  if (f.preset && base.preset && f.preset !== base.preset) merged.preset = f.preset;
  const flagPlugins: PluginItem[] = f.plugin.map(parsePluginFlag);
  merged.plugins = [...(base.plugins ?? []), ...flagPlugins];
  return merged;
}

/** Each flag's place in the resolved config, for --resume's check of what the flags change. */
const FLAG_PATHS: Record<string, string> = {
  data: '--data',
  'model.name': '--model',
  epochs: '--epochs',
  batchSize: '--batch-size',
  gradAccum: '--grad-accum',
  'optimizer.lr': '--lr',
  'optimizer.name': '--optimizer',
  'schedule.name': '--schedule',
  seed: '--seed',
  backend: '--backend',
  'limit.train': '--limit-train',
  'limit.val': '--limit-val',
  'limit.steps': '--steps',
  'dataOptions.valSplit': '--val-split',
  'dataOptions.strict': '--strict',
  divergence: '--on-divergence',
  checkpoint: '--no-checkpoint',
  initFrom: '--init-from',
  pretrained: '--pretrained',
};

/**
 * What a resumed run may change: how long it trains (the schedule then spans the new total, as timm's
 * --resume with a larger --epochs), how it is validated, where and how it computes. Not what it learns from.
 */
export const RESUMABLE = ['epochs', 'limit.val', 'backend', 'gradAccum', 'divergence', 'checkpoint'];

/** [dotted path, value] of every set leaf of a settings object ("model": "x" is model.name). */
const leaves = (o: object, p = ''): [string, unknown][] =>
  Object.entries(o).flatMap(([k, v]): [string, unknown][] =>
    v === undefined
      ? []
      : v && typeof v === 'object' && !Array.isArray(v)
        ? leaves(v, `${p}${k}.`)
        : [[k === 'model' && !p ? 'model.name' : `${p}${k}`, v]],
  );

/**
 * The config of the run in `f.resume`, from its checkpoint, with the flags that are safe to change
 * (RESUMABLE) applied. Any other flag that differs from what the run recorded is refused, each named
 * with the recorded and the new value; one that repeats the recorded value is fine.
 */
export async function resumeConfig(f: TrainFlags & { resume: string }): Promise<UserConfig> {
  const out = resolve(f.resume);
  const store = new DirCheckpointer(new ConsoleLogger());
  if (!store.exists(join(out, 'checkpoint')))
    throw new TricksError(
      `--resume ${f.resume}: no checkpoint/ in that directory`,
      'give the --out directory of a run that finished at least one epoch',
    );
  const state = await store.loadState(join(out, 'checkpoint'));
  const was = state.config as ResolvedConfig;
  const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));
  const given = flagSettings(f);
  const refused: string[] = [];
  for (const [path, v] of leaves(given)) {
    const old = path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], was);
    if (RESUMABLE.includes(path) || JSON.stringify(old) === JSON.stringify(v)) continue;
    const flag = FLAG_PATHS[path]
      ? `${FLAG_PATHS[path]} `
      : path === 'dataOptions.size' && f.imageSize
        ? '--image-size '
        : `--data-option ${path.slice(12)}=`;
    refused.push(`${flag}${show(v)} (the run has ${old === undefined ? 'none' : show(old)})`);
  }
  const presetName = (p: string) => p.replace(/ \(.*\)$/, '');
  if (f.preset && !was.presets.some((p) => presetName(p) === f.preset || p.endsWith(`(${f.preset})`)))
    refused.push(`--preset ${f.preset} (the run has ${was.presets.map(presetName).join(', ') || 'none'})`);
  for (const flag of f.plugin) {
    const item = parsePluginFlag(flag);
    const [name, options] = typeof item === 'string' ? [item, {}] : [item[0], item[1] ?? {}];
    const p = was.plugins.find((q) => q.key === name || q.name === name || q.source === name);
    if (!p || Object.entries(options).some(([k, v]) => JSON.stringify(p.options[k]) !== JSON.stringify(v)))
      refused.push(`--plugin ${flag} (${p ? `the run has ${p.key}=${JSON.stringify(p.options)}` : `the run has no plugin ${name}`})`);
  }
  if (f.config) refused.push(`--config ${f.config} (a resumed run keeps the config its checkpoint recorded)`);
  if (f.out !== undefined && resolve(f.out) !== out) refused.push(`--out ${f.out} (a resumed run writes into its own folder, ${f.resume})`);
  if (refused.length)
    throw new TricksError(
      `--resume ${f.resume}: ${refused.length === 1 ? 'this flag changes' : 'these flags change'} what the run trains: ${refused.join('; ')}`,
      `a resumed run may change only ${RESUMABLE.map((k) => FLAG_PATHS[k]).join(', ')}; for anything else start a new run with another --out`,
    );
  const done = state.epoch + (state.stepInEpoch > 0 ? 1 : 0);
  if (f.epochs !== undefined && f.epochs < done)
    throw new TricksError(
      `--resume ${f.resume} --epochs ${f.epochs}: the run is ${state.stepInEpoch ? 'inside' : 'after'} epoch ${done} already`,
      `give --epochs ${done} or more (the run had --epochs ${was.epochs})`,
    );
  const { presets: _p, plugins, out: _o, ...settings } = was;
  const user: UserConfig = merge(settings, given) as UserConfig;
  user.plugins = plugins.map(
    (p) => [p.source.startsWith('.') || p.source.startsWith('/') ? p.source : p.name, p.options, p.key] as PluginItem,
  );
  user.out = out;
  return user;
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
    .option('--out <dir>', 'output directory (default runs/<timestamp>); one that holds another run is refused', folder('--out'))
    .option('--overwrite', 'replace the run in --out (its checkpoints, metrics.jsonl and run.json are removed first)')
    .option(
      '--resume <dir>',
      `continue the run in <dir> from its last checkpoint; of the other flags only ${RESUMABLE.map((k) => FLAG_PATHS[k]).join(', ')} may differ from the run's`,
      folder('--resume'),
    )
    .action(async (f: TrainFlags) => {
      if (f.resume && f.overwrite)
        throw new TricksError(
          '--resume and --overwrite exclude each other',
          '--resume continues the run in the folder; --overwrite replaces it',
        );
      const user = f.resume ? await resumeConfig({ ...f, resume: f.resume }) : await configFromFlags(f);
      const trainer = await createStandardTrainer(user, { builtins: [progressBuiltin] });
      if (!f.resume) checkDataFlags(trainer.datasets, trainer.config.data, f);
      checkWritable(trainer.config.out);
      if (!f.resume && user.preset) await logRecipe(user.preset, trainer.logger);
      const result = await trainer.run({ resume: Boolean(f.resume), overwrite: f.overwrite, handleSignals: true });
      const last = result.epochs.at(-1);
      process.stdout.write(
        `${JSON.stringify({ out: result.out, val_top1: last?.val_top1, val_top5: last?.val_top5, epochs: result.epochs.length, stopped: result.stopped })}\n`,
      );
    });
}
