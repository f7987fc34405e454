import { resolve } from 'node:path';
import type { Command } from 'commander';
import { LR_FIND_DEFAULTS, lrFind, lrFindSummary } from '@tricks/lab';
import { TricksError } from '@tricks/core';
import { addTrainOptions, configFromFlags, type TrainFlags } from './train.js';
import { folder, int, num } from './flags.js';
import { checkDataFlagsFor } from './data-options.js';

interface LrFindFlags extends TrainFlags {
  startLr: number;
  endLr: number;
  numIt: number;
  stopDiv: boolean;
}

export function registerLrFindCommand(program: Command): void {
  addTrainOptions(
    program
      .command('lr-find')
      .description(
        "fastai's learning-rate finder: trains the recipe for up to --num-it steps with the lr rising exponentially, " +
          'writes the loss against the lr (lr-find.png, lr-find.json) and suggests an --lr; your runs are not touched',
      ),
  )
    .option('--start-lr <lr>', 'first learning rate of the sweep', num('--start-lr'), LR_FIND_DEFAULTS.startLr)
    .option('--end-lr <lr>', 'the learning rate the sweep rises towards', num('--end-lr'), LR_FIND_DEFAULTS.endLr)
    .option('--num-it <n>', 'steps of the sweep', int('--num-it'), LR_FIND_DEFAULTS.numIt)
    .option('--no-stop-div', 'go on when the smoothed loss exceeds 4x the best (default: stop there)')
    .option('--out <dir>', 'a folder of its own for lr-find.png and lr-find.json (default runs/lr-find-<timestamp>)', folder('--out'))
    .action(async (f: LrFindFlags) => {
      for (const [key, flag] of [
        ['lr', '--lr'],
        ['schedule', '--schedule'],
        ['epochs', '--epochs'],
      ] as const)
        if (f[key] !== undefined)
          throw new TricksError(
            `tricks lr-find sets the learning rate itself: ${flag} does not apply`,
            `drop ${flag}; the sweep runs --num-it steps`,
          );
      const user = await configFromFlags({ ...f, out: undefined });
      await checkDataFlagsFor(user, f);
      const out = resolve(f.out ?? `runs/lr-find-${new Date().toISOString().replace(/[:.]/g, '-')}`);
      const r = await lrFind(user, { startLr: f.startLr, endLr: f.endLr, numIt: f.numIt, stopDiv: f.stopDiv, out });
      process.stdout.write(lrFindSummary(r));
    });
}
