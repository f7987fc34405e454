import { resolve } from 'node:path';
import type { Command } from 'commander';
import { addQueueOptions, extendAblateCommand, printStudy, runStudyFromFlags, type QueueFlags } from './distributed.js';
import { loadRunner, type RunRecord, parseGrid, planSweep, specUserConfig } from '@tricks/distributed';
import { TricksError, ConsoleLogger, resolveConfig } from '@tricks/core';
import { addTrainOptions, configFromFlags, type TrainFlags } from './train.js';
import { checkDataFlagsFor } from './data-options.js';
import { folder, int } from './flags.js';

interface SweepFlags extends TrainFlags, QueueFlags {
  grid: string;
  random?: number;
  seeds: number;
}

export function registerSweepCommand(program: Command): void {
  extendAblateCommand(program);
  const cmd = addTrainOptions(
    program
      .command('sweep')
      .description(
        'train a preset over a grid (or a random sample) of hyper-parameters x seeds, here or on a queue of workers; writes ablation.md, ablation.json and charts',
      ),
  )
    .requiredOption('--out <dir>', 'output directory (one folder per run, ablation.md, ablation.json, charts)', folder('--out'))
    .option(
      '--grid <json>',
      'config paths and their values: \'{"plugins.mixup.alpha":[0.2,0.4],"optimizer.lr":[0.05,0.1]}\'; with --random also {"uniform":[lo,hi]}, {"loguniform":[lo,hi]}, {"int":[lo,hi]}',
    )
    .option('--random <n>', 'train n points drawn at random (seeded by --seed) instead of the whole grid', int('--random', 1))
    .option('--seeds <k>', 'seeds per point', int('--seeds', 1), 1);
  addQueueOptions(cmd).action(async (f: SweepFlags) => {
    const out = resolve(f.out!);
    if (!f.collect && !f.grid) throw new TricksError('tricks sweep needs --grid', `e.g. --grid '{"optimizer.lr":[0.05,0.1]}'`);
    const grid = f.collect ? {} : parseGrid(f.grid, f.random);
    const overrides = await configFromFlags({ ...f, out: undefined });
    await checkDataFlagsFor(overrides, f);
    const preset = overrides.preset;
    delete overrides.preset;
    delete overrides.out;
    const plan = () => planSweep({ preset, grid, random: f.random, seeds: f.seeds, seed: overrides.seed, overrides, out });
    const title = `Sweep${preset ? ` of ${preset}` : ''}: ${Object.keys(grid).join(', ')}`;
    if (f.queue || f.collect) {
      const specs = f.collect ? [] : await plan();
      const groups = Object.fromEntries(specs.map((s) => [s.id, Number(/^p(\d+)/.exec(s.id)![1])]));
      await runStudyFromFlags(f, async () => specs, { kind: 'sweep', title, groups });
      return;
    }
    // Locally: one run after another in this process, resumable (finished runs are skipped).
    const logger = new ConsoleLogger(Boolean(process.env.TRICKS_VERBOSE));
    const specs = await plan();
    for (const s of specs) await resolveConfig(specUserConfig(s), { ladderStep: s.ladderStep });
    logger.info(`sweep: ${specs.length} runs (${specs.length / f.seeds} points x ${f.seeds} seed(s)); out ${out}`);
    const runner = await loadRunner();
    const records: RunRecord[] = [];
    for (const [i, s] of specs.entries()) {
      logger.info(`sweep: [${i + 1}/${specs.length}] ${s.id}: ${s.stepName}`);
      const r = await runner.runOne(s, { logger, handleSignals: true });
      records.push({ ...r, ladderStep: Number(/^p(\d+)/.exec(s.id)![1]) });
    }
    const summary = await runner.summarize(records, out, { title });
    printStudy({ out, runs: [], records, failed: [], summary });
  });
}
