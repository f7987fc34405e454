import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ContainerModule } from 'inversify';
import {
  ConsoleLogger,
  createTrainer,
  definePlugin,
  NonFiniteLoss,
  STAGE_REPORT,
  StopTraining,
  TOKENS,
  TricksError,
  writeDirAtomic,
  type Logger,
  type PluginDefinition,
  type ScheduleRegistry,
  type UserConfig,
} from '@tricks/core';
import { renderSvg, svgToPng } from './report/charts.js';
import { standardBuiltins } from './standard.js';

/** The sweep (fastai's LRFinder and Learner.lr_find arguments). */
export interface LrSweep {
  /** First learning rate (fastai start_lr). */
  startLr: number;
  /** The rate the sweep heads for (end_lr): step i trains at startLr * (endLr / startLr) ** (i / numIt). */
  endLr: number;
  /** Steps of the sweep (num_it). */
  numIt: number;
  /** Stop once the smoothed loss exceeds 4x the lowest so far (stop_div). */
  stopDiv: boolean;
}

export const LR_FIND_DEFAULTS: LrSweep = { startLr: 1e-7, endLr: 10, numIt: 100, stopDiv: true };
/** What `lrFind` writes into its folder, and all it writes. */
export const LR_FIND_FILES = ['lr-find.json', 'lr-find.png'];

/** A suggested lr and the point of the curve it marks (for `minimum`, the lowest loss, a decade above the lr). */
export interface Suggestion {
  lr: number;
  point: { lr: number; loss: number };
}
export type Suggestions = Record<'valley' | 'steep' | 'minimum', Suggestion>;

/** fastai's SchedExp at pos = step / numIt, as LRFinder.before_batch sets it: the last step is a step short of endLr. */
export const sweepLr = (s: Pick<LrSweep, 'startLr' | 'endLr' | 'numIt'>, step: number) =>
  s.startLr * (s.endLr / s.startLr) ** (step / s.numIt);

/**
 * What fastai's Recorder and LRFinder.after_batch do with each step: record the lr and the loss, smooth the loss
 * (AvgSmoothLoss: an exponential moving average, beta 0.98, debiased by 1 - beta^n), and stop once the smoothed
 * loss exceeds 4x the best so far (stopDiv) or after numIt steps.
 */
export class SweepRecorder {
  readonly lrs: number[] = [];
  readonly losses: number[] = [];
  readonly smoothed: number[] = [];
  best = Infinity;
  private val = 0;

  constructor(
    readonly sweep: LrSweep,
    readonly beta = 0.98,
  ) {}

  /** Records one step; returns why the sweep stops after it, if it does. */
  add(lr: number, loss: number): string | undefined {
    this.val = loss + this.beta * (this.val - loss); // torch.lerp(loss, val, beta)
    const smooth = this.val / (1 - this.beta ** (this.lrs.length + 1));
    this.lrs.push(lr);
    this.losses.push(loss);
    this.smoothed.push(smooth);
    if (smooth < this.best) this.best = smooth;
    if (this.sweep.stopDiv && smooth > 4 * this.best)
      return `step ${this.lrs.length}: the smoothed loss ${smooth.toPrecision(4)} > 4x the best ${this.best.toPrecision(4)}`;
    return undefined;
  }

  get done(): boolean {
    return this.lrs.length >= this.sweep.numIt;
  }
}

/** The first index of the value nearest `lr` (fastai: min(range(len(lrs)), key=lambda i: abs(lrs[i]-lr))). */
const nearest = (lrs: number[], lr: number) => lrs.reduce((k, v, i) => (Math.abs(v - lr) < Math.abs(lrs[k]! - lr) ? i : k), 0);
const argmin = (xs: number[]) => xs.reduce((k, v, i) => (v < xs[k]! ? i : k), 0);

/** fastai's valley: the longest decreasing subsequence of the loss, and the point about halfway along it. */
export function valley(lrs: number[], losses: number[]): Suggestion {
  const n = losses.length;
  let maxStart = 0,
    maxEnd = 0;
  const lds = new Array<number>(n).fill(1);
  for (let i = 1; i < n; i++)
    for (let j = 0; j < i; j++) {
      if (losses[i]! < losses[j]! && lds[i]! < lds[j]! + 1) lds[i] = lds[j]! + 1;
      if (lds[maxEnd]! < lds[i]!) {
        maxEnd = i;
        maxStart = maxEnd - lds[maxEnd]!;
      }
    }
  const sections = (maxEnd - maxStart) / 3;
  let idx = maxStart + Math.trunc(sections) + Math.trunc(sections / 2);
  if (idx < 0) idx += n; // Python's lrs[-1] when the whole curve falls
  return { lr: lrs[idx]!, point: { lr: lrs[idx]!, loss: losses[idx]! } };
}

/** fastai's steep: the lr where the loss falls fastest against log(lr). */
export function steep(lrs: number[], losses: number[]): Suggestion {
  const grads = losses.slice(1).map((l, i) => (l - losses[i]!) / (Math.log(lrs[i + 1]!) - Math.log(lrs[i]!)));
  const lr = lrs[argmin(grads)]!;
  return { lr, point: { lr, loss: losses[nearest(lrs, lr)]! } };
}

/** fastai's minimum: a tenth of the lr at the lowest loss. */
export function minimum(lrs: number[], losses: number[]): Suggestion {
  const lr = lrs[argmin(losses)]!;
  return { lr: lr / 10, point: { lr, loss: losses[nearest(lrs, lr)]! } };
}

/**
 * Learner.lr_find's suggestions from the recorded lrs and smoothed losses: it drops the first num_it // 10 and the
 * last 5 points and everything from the first NaN, then asks each function. Undefined with fewer than 2 points left.
 */
export function suggest(lrs: number[], smoothed: number[], numIt: number): Suggestions | undefined {
  const from = Math.floor(numIt / 10);
  const to = Math.max(0, lrs.length - 5);
  let l = lrs.slice(from, to);
  let s = smoothed.slice(from, to);
  const nan = s.findIndex(Number.isNaN);
  if (nan >= 0) [l, s] = [l.slice(0, nan), s.slice(0, nan)];
  if (s.length < 2) return undefined;
  return { valley: valley(l, s), steep: steep(l, s), minimum: minimum(l, s) };
}

/** A learning rate as the flag wants it: 2 significant digits, 3.2e-3. */
export const fmtLr = (lr: number) => lr.toExponential(1);

export interface LrFindResult {
  out: string;
  png: string;
  json: string;
  sweep: LrSweep;
  /** The lr and raw and smoothed training loss of each step taken. */
  lrs: number[];
  losses: number[];
  smoothed: number[];
  /** Why the sweep ended before numIt steps, if it did. */
  stopped?: string;
  suggestions?: Suggestions;
  /** ctx.baseLr / optimizer.lr after the plugins' setup (lr-scaling): the flag to pass is the lr divided by it. */
  lrScale: number;
  /** `--lr X` for the valley suggestion (undefined without suggestions). */
  pass?: string;
}

/** The sweep's options with defaults, or one TricksError naming the option. */
export function checkSweep(o: Partial<LrSweep>): LrSweep {
  const s = { ...LR_FIND_DEFAULTS, ...o };
  const flag = { startLr: 'startLr (--start-lr)', endLr: 'endLr (--end-lr)', numIt: 'numIt (--num-it)' };
  for (const k of ['startLr', 'endLr'] as const)
    if (!(Number.isFinite(s[k]) && s[k] > 0)) throw new TricksError(`lr-find: ${flag[k]} is ${s[k]}`, 'a learning rate is a number > 0');
  if (!(s.startLr < s.endLr))
    throw new TricksError(
      `lr-find: ${flag.startLr} ${s.startLr} is not below ${flag.endLr} ${s.endLr}`,
      'the sweep rises: e.g. --start-lr 1e-7 --end-lr 10',
    );
  if (!(Number.isInteger(s.numIt) && s.numIt >= 6))
    throw new TricksError(`lr-find: ${flag.numIt} is ${s.numIt}`, 'an integer >= 6 (fastai raises fewer to 6); the default is 100 steps');
  return s;
}

/** An output folder of its own: new, or a previous lr-find's; never a file, a run's folder or a folder inside one. */
function checkOut(out: string): void {
  const isRun = (d: string) => ['run.json', 'checkpoint', 'metrics.jsonl'].some((f) => existsSync(join(d, f)));
  const hint = `give a new folder, e.g. --out ${join(dirname(out), `lr-find-${Date.now()}`)}`;
  if (isRun(dirname(out))) throw new TricksError(`--out ${out} is inside the run folder ${dirname(out)}`, hint);
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new TricksError(`--out ${out} is a file, not a folder`, hint);
  const other = readdirSync(out).filter((f) => !LR_FIND_FILES.includes(f));
  if (other.length)
    throw new TricksError(
      `--out ${out} ${isRun(out) ? "is a run's folder" : 'is not empty'} (it holds ${other.slice(0, 4).join(', ')}${other.length > 4 ? ', ...' : ''}): lr-find writes only into a folder of its own`,
      hint,
    );
}

/** The smoothed loss against the lr, log x, fastai's plot (the last 5 points left out) with the suggestions marked. */
export function lrFindSpec(r: Pick<LrFindResult, 'lrs' | 'smoothed' | 'suggestions'>, title: string): Record<string, unknown> {
  const n = r.lrs.length > 5 ? r.lrs.length - 5 : r.lrs.length;
  const curve = r.lrs.slice(0, n).map((lr, i) => ({ lr, loss: r.smoothed[i] }));
  const label = (name: string, s: Suggestion) => `${name} ${fmtLr(s.lr)}${s.lr !== s.point.lr ? ` (${fmtLr(s.point.lr)} / 10)` : ''}`;
  const marks = Object.entries(r.suggestions ?? {}).map(([name, s]) => ({ ...s.point, name: label(name, s) }));
  const x = {
    field: 'lr',
    type: 'quantitative',
    scale: { type: 'log', nice: false },
    title: 'learning rate (log scale)',
    axis: { format: '~e' },
  };
  const y = { field: 'loss', type: 'quantitative', scale: { zero: false }, title: 'training loss (smoothed)' };
  return {
    title,
    width: 480,
    height: 280,
    layer: [
      { data: { values: curve }, mark: { type: 'line', strokeWidth: 2, color: '#4c78a8' }, encoding: { x, y } },
      {
        data: { values: marks },
        mark: { type: 'point', filled: true, size: 90, opacity: 1 },
        encoding: {
          x,
          y,
          color: {
            field: 'name',
            type: 'nominal',
            sort: null,
            title: 'suggestion',
            scale: { range: ['#e45756', '#f58518', '#54a24b'] },
            legend: { orient: 'bottom', direction: 'horizontal', labelLimit: 320 },
          },
        },
      },
    ],
  };
}

/** Drops the trainer's per-epoch lines (the sweep's epochs and their 1-item validation mean nothing) and those on its temp folder. */
const sweepLogger = (l: Logger, runDir: string): Logger => ({
  info: (m) => (/^epoch \d+\/\d+: /.test(m) || m.includes(runDir) ? undefined : l.info(m)),
  warn: (m) => l.warn(m),
  debug: (m) => l.debug(m),
});

/**
 * fastai's learning-rate finder (fastai/callback/schedule.py: LRFinder, Learner.lr_find, valley, steep, minimum).
 * Trains the recipe `user` (its model from its initial weights, its plugins, its optimizer) for up to numIt steps
 * with the lr rising exponentially from startLr towards endLr instead of its schedule, records each step's training
 * loss, smooths it (beta 0.98), stops once the smoothed loss exceeds 4x the best (stopDiv) or the loss is NaN, and
 * writes OUT/lr-find.json and OUT/lr-find.png. The run itself goes to a temp folder that is removed; nothing else
 * is written. Validation is skipped, as fastai's (the trainer's end-of-epoch evaluation sees 1 item).
 */
export async function lrFind(
  user: UserConfig,
  o: Partial<LrSweep> & { out: string; logger?: Logger; builtins?: PluginDefinition[] },
): Promise<LrFindResult> {
  const sweep = checkSweep(o);
  const out = resolve(o.out);
  checkOut(out);
  const logger = o.logger ?? new ConsoleLogger(Boolean(process.env.TRICKS_VERBOSE));
  const rec = new SweepRecorder(sweep);
  let lrScale = 1,
    stopped: string | undefined,
    title = 'LR finder';
  const every = Math.max(1, Math.round(sweep.numIt / 10));
  const plugin = definePlugin({
    name: 'tricks:lr-find',
    description: "fastai's LR finder: an exponential lr sweep, the smoothed loss recorded per step",
    apply(api) {
      api.hooks.setup.tapPromise({ name: 'tricks:lr-find', stage: STAGE_REPORT }, async (ctx) => {
        lrScale = ctx.baseLr / ctx.config.optimizer.lr;
        title = `LR finder: ${ctx.config.model.name} on ${ctx.config.data}, ${ctx.config.optimizer.name}, batch ${ctx.config.batchSize}`;
        logger.info(`lr-find: ${sweep.numIt} steps, lr ${sweep.startLr} -> ${sweep.endLr} (exponential); validation skipped`);
      });
      api.hooks.step.tap({ name: 'tricks:lr-find', stage: STAGE_REPORT }, (ctx) => {
        const loss = Object.values(ctx.lastTerms).reduce((a, b) => a + b, 0);
        stopped = rec.add(ctx.lr, loss);
        const n = rec.lrs.length;
        if (n % every === 0)
          logger.info(
            `lr-find: step ${n}/${sweep.numIt} lr ${fmtLr(ctx.lr)} loss ${loss.toFixed(4)} (smoothed ${rec.smoothed[n - 1]!.toFixed(4)})`,
          );
        if (stopped) throw new StopTraining(stopped);
        if (rec.done) throw new StopTraining(`${sweep.numIt} steps`);
      });
    },
    modules: () => [
      new ContainerModule(({ onActivation }) => {
        onActivation<ScheduleRegistry>(TOKENS.Schedules, (_c, registry) => {
          registry.register('lr-find', () => (_base, p) => sweepLr(sweep, p.step));
          return registry;
        });
      }),
    ],
  });
  const runDir = await mkdtemp(join(tmpdir(), 'tricks-lr-find-'));
  try {
    const config: UserConfig = {
      ...user,
      out: runDir,
      epochs: sweep.numIt, // every epoch has a step at least; the sweep stops itself
      schedule: { name: 'lr-find' },
      checkpoint: false,
      limit: { ...user.limit, val: 1 },
      export: { formats: ['tfjs'] },
    };
    const skip = new Set(['tricks:report', 'tricks:divergence', 'tricks:run-folder']);
    const builtins = [...standardBuiltins().filter((b) => !skip.has(b.name)), ...(o.builtins ?? []), plugin as PluginDefinition];
    const trainer = await createTrainer(config, { builtins, logger: sweepLogger(logger, runDir) });
    try {
      await trainer.run();
    } catch (e) {
      if (!(e instanceof NonFiniteLoss)) throw e;
      stopped = `step ${rec.lrs.length + 1}: the loss is not finite`;
    } finally {
      trainer.dispose();
    }
  } finally {
    await rm(runDir, { recursive: true, force: true });
  }
  const { lrs, losses, smoothed } = rec;
  const suggestions = suggest(lrs, smoothed, sweep.numIt);
  const pass = suggestions && `--lr ${fmtLr(suggestions.valley.lr / lrScale)}`;
  const result: LrFindResult = {
    out,
    png: join(out, 'lr-find.png'),
    json: join(out, 'lr-find.json'),
    sweep,
    lrs,
    losses,
    smoothed,
    stopped,
    suggestions,
    lrScale,
    pass,
  };
  const png = await svgToPng(await renderSvg(lrFindSpec(result, title)));
  const { out: _o, png: _p, json: _j, ...saved } = result;
  const reference = 'fastai/callback/schedule.py: LRFinder, Learner.lr_find (valley, steep, minimum); losses smoothed as AvgSmoothLoss';
  await writeDirAtomic(out, async (tmp) => {
    await writeFile(join(tmp, 'lr-find.json'), JSON.stringify({ reference, title, ...saved }, null, 1));
    await writeFile(join(tmp, 'lr-find.png'), png);
  });
  return result;
}

/** What `tricks lr-find` prints: the sweep, each suggestion, the flag to pass and the plot. */
export function lrFindSummary(r: LrFindResult): string {
  const lines = [
    `lr-find: ${r.lrs.length} steps, lr ${fmtLr(r.lrs[0] ?? NaN)} to ${fmtLr(r.lrs.at(-1) ?? NaN)}${r.stopped ? ` (stopped at ${r.stopped})` : ''}`,
  ];
  const s = r.suggestions;
  if (!s) lines.push('  too few steps before the loss diverged to suggest an lr: try a lower --start-lr or a larger --num-it');
  else {
    lines.push(`  valley   ${fmtLr(s.valley.lr)}  (fastai's default: halfway down the longest fall of the loss)`);
    lines.push(`  steep    ${fmtLr(s.steep.lr)}  (the steepest fall of the loss)`);
    lines.push(
      `  minimum  ${fmtLr(s.minimum.lr)}  (a tenth of ${fmtLr(s.minimum.point.lr)}, the lowest loss ${s.minimum.point.loss.toFixed(4)})`,
    );
    const scaled = r.lrScale !== 1 ? ` (the plugins scale --lr by ${Number(r.lrScale.toPrecision(4))})` : '';
    lines.push(`Pass ${r.pass} to tricks train${scaled}.`);
  }
  lines.push(`plot: ${r.png}`, `data: ${r.json}`);
  return `${lines.join('\n')}\n`;
}
