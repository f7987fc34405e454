import { Command, CommanderError } from 'commander';
import { CORE_VERSION } from '@tricks/core';
import { reportError } from './errors.js';
import { registerEvalCommand } from './eval.js';
import { registerPluginsCommand } from './plugins.js';
import { registerTrainCommand } from './train.js';

/** Command modules of other parts of core; each exports one or more `register*Command(program)`. */
const OPTIONAL_COMMANDS = [
  './bench.js',
  './model.js',
  './augment-preview.js',
  './export.js',
  './convert.js',
  './predict.js',
  './ablate.js',
  './new.js',
  './sweep.js',
  './lr-find.js',
  './worker.js',
];

export async function buildProgram(): Promise<Command> {
  const program = new Command('tricks')
    .description('train image classifiers on TensorFlow.js with the bag of tricks, one plugin per trick')
    .version(CORE_VERSION)
    .exitOverride()
    .showHelpAfterError('(add --help for usage)');
  registerTrainCommand(program);
  registerEvalCommand(program);
  registerPluginsCommand(program);
  for (const file of OPTIONAL_COMMANDS) {
    let mod: Record<string, unknown>;
    try {
      mod = await import(file);
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && String((e as Error).message).includes(file.slice(2))) continue;
      throw e;
    }
    for (const [name, fn] of Object.entries(mod)) if (/^register\w*Command$/.test(name) && typeof fn === 'function') fn(program);
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    const program = await buildProgram();
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    return reportError(e);
  }
}
