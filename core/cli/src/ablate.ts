import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { runAblation, type RunSpec, runOne } from '@tricks/lab';
import { TricksError } from '@tricks/core';
import { addTrainOptions, configFromFlags, type TrainFlags } from './train.js';
import { checkDataFlagsFor } from './data-options.js';
import { progressBuiltin } from './progress.js';
import { folder, int } from './flags.js';

/** This CLI's bin/tricks.js (from dist/src/): each ablation run's child process runs `tricks ablate-run`. */
export const TRICKS_BIN = fileURLToPath(new URL('../../bin/tricks.js', import.meta.url));

interface AblateFlags extends TrainFlags {
  rungs?: string[];
  seeds: number;
  jobs: number;
  teacher?: string;
}

export function registerAblateCommand(program: Command): void {
  addTrainOptions(
    program
      .command('ablate')
      .description(
        "run a preset's ablation ladder (each step adds one trick), several seeds each; resumable; writes ablation.html (the ladder with error bars, deltas, curves), ablation.md, ablation.json and charts",
      ),
  )
    .requiredOption(
      '--out <dir>',
      'output directory (runs/<id>/ per run, ablation.html, ablation.md, ablation.json, ladder.png, curves.png)',
      folder('--out'),
    )
    .option(
      '--rungs <list>',
      'run only these rungs: 1-based indices, ranges or names, e.g. 1,3-4 or "+ cosine LR" (repeatable); the tables cover every finished rung in --out',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--seeds <n>', 'seeds per step', int('--seeds', 1), 3)
    .option('--jobs <n>', 'runs at once, each in its own process', int('--jobs', 1), 1)
    .option('--teacher <dir>', 'a trained teacher (model or run directory) for distillation steps; default: the ablation trains one')
    .action(async (f: AblateFlags & { out: string }) => {
      await checkDataFlagsFor(await configFromFlags({ ...f, out: undefined }), f);
      if (f.rungs && ((f as { queue?: string }).queue || (f as { collect?: boolean }).collect))
        throw new TricksError(
          '--rungs runs part of a ladder here; it does not combine with --queue or --collect',
          'drop --rungs, or --queue',
        );
      if ((f as { queue?: string }).queue || (f as { collect?: boolean }).collect)
        return (await import('./distributed.js')).ablateOnQueue(f); // --queue/--collect: on BullMQ workers (issue 10)
      const overrides = await configFromFlags({ ...f, out: undefined });
      const preset = overrides.preset;
      if (!preset)
        throw new TricksError(
          'tricks ablate needs a preset with a ladder',
          'add --preset NAME (e.g. --preset fashion-mnist), or "preset" in the config file',
        );
      delete overrides.preset;
      delete overrides.out;
      const { summary, failed } = await runAblation({
        bin: TRICKS_BIN,
        preset,
        seeds: f.seeds,
        overrides,
        out: resolve(f.out),
        jobs: f.jobs,
        teacher: f.teacher,
        rungs: f.rungs,
        handleSignals: true,
      });
      process.stdout.write(
        `${JSON.stringify({ out: resolve(f.out), steps: summary.steps.map((s) => ({ step: s.stepName, top1: s.mean, std: s.std, n: s.n })), failed: failed.map((x) => x.id) })}\n`,
      );
      if (failed.length) {
        throw new TricksError(
          `${failed.length} run(s) failed: ${failed.map((x) => `${x.id} (${x.reason}${x.log ? `; log ${x.log}` : ''})`).join(', ')}`,
          'fix the cause and run the same command again: finished runs are kept',
        );
      }
    });

  program
    .command('ablate-run <spec>', { hidden: true })
    .description('run one ablation run from its spec.json (used by tricks ablate)')
    .action(async (file: string) => {
      const spec = JSON.parse(await readFile(file, 'utf8')) as RunSpec;
      const rec = await runOne(spec, { handleSignals: true, builtins: [progressBuiltin] });
      process.stdout.write(`${JSON.stringify({ id: rec.id, top1: rec.top1, seconds: rec.seconds })}\n`);
    });
}
