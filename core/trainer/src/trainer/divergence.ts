import type { StepStats, TrainContext } from '../contract.js';
import { TricksError } from '../hooks/errors.js';
import { STAGE_REPORT } from '../hooks/hooks.js';
import { definePlugin } from '../plugin/define.js';

/** The thresholds of the divergence check (the defaults are what every run gets). */
export interface DivergenceOptions {
  /** Steps in the running mean of the step loss. */
  window?: number;
  /** During the first epoch: diverging when the running mean exceeds this many times the first step's loss. */
  overStart?: number;
  /** After the first epoch: ... this many times the first epoch's mean training loss. */
  overFirstEpoch?: number;
  /** At any time: ... this many times the lowest running mean so far. */
  overBest?: number;
}

export const DIVERGENCE_DEFAULTS: Required<DivergenceOptions> = { window: 10, overStart: 2, overFirstEpoch: 1.5, overBest: 10 };

/** A loss for the log: 4 decimals, or 4 digits when it is huge. */
const fmt = (v: number) => (Math.abs(v) < 1e4 ? v.toFixed(4) : v.toPrecision(4));

/** A learning rate a tenth of `lr`, written shortly (0.1 -> 0.01, 0.003 -> 0.0003). */
const tenth = (lr: number) => String(Number((lr / 10).toPrecision(3)));

/**
 * The divergence check: the training loss of each step (from the epoch's running sums that stepEnd reports) goes
 * into a running mean over `window` steps. When that mean climbs above the first epoch's loss, or grows tenfold
 * over its best, the log says so once, with the likely cause (the learning rate, for this data and model) and the
 * flag to change it. Nothing stops unless config.divergence is 'stop' (then the run fails with that message, the
 * last checkpoint intact); 'off' turns the check off. NaN and infinite losses are the trainer's own stop.
 */
export const divergenceCheck = (o: DivergenceOptions = {}) =>
  definePlugin({
    name: 'tricks:divergence',
    description: 'warns once when the training loss diverges (the learning rate), naming the flag to change it',
    apply(api) {
      const t = { ...DIVERGENCE_DEFAULTS, ...o };
      const recent: number[] = [];
      let sum = 0;
      let prevSum = 0,
        prevSeen = 0;
      let start: number | undefined;
      let best = Infinity;
      let warned = false;
      api.hooks.epochStart.tap({ name: 'tricks:divergence', stage: STAGE_REPORT }, () => {
        prevSum = prevSeen = 0;
      });
      api.hooks.stepEnd.tap({ name: 'tricks:divergence', stage: STAGE_REPORT }, (ctx: TrainContext, s: StepStats) => {
        const mode = ctx.config.divergence ?? 'warn';
        if (mode === 'off' || warned) return;
        const total = s.seen > 0 ? s.loss * s.seen : 0;
        const n = s.seen - prevSeen;
        const fresh = prevSeen === 0 && s.seen > ctx.config.batchSize; // resumed mid-epoch: the sums of the steps before
        const loss = (total - prevSum) / n;
        prevSum = total;
        prevSeen = s.seen;
        if (!(n > 0) || fresh || !Number.isFinite(loss)) return; // a cancelled batch, or nothing new
        // the first step's loss is the untrained model's; after a resume, the first epoch's mean stands in for it
        start ??= ctx.metrics[0]?.train_loss ?? loss;
        recent.push(loss);
        sum += loss;
        if (recent.length > t.window) sum -= recent.shift()!;
        if (recent.length < t.window) return;
        const mean = sum / t.window;
        best = Math.min(best, mean);
        const first = ctx.metrics[0]?.train_loss;
        let why: string | undefined;
        if (first !== undefined && ctx.epoch > 0 && mean > t.overFirstEpoch * first)
          why = `above the first epoch's ${fmt(first)} (over ${t.overFirstEpoch}x)`;
        else if (first === undefined && mean > t.overStart * start)
          why = `over ${t.overStart}x the first step's ${fmt(start)} (the untrained model)`;
        else if (mean > t.overBest * best) why = `${(mean / best).toFixed(1)}x its lowest so far, ${fmt(best)}`;
        if (!why) return;
        warned = true;
        const lr = ctx.config.optimizer.lr;
        const scaled = ctx.baseLr !== lr ? `, ${ctx.baseLr.toPrecision(3)} after plugins` : '';
        const message =
          `the training loss is diverging (epoch ${ctx.epoch + 1}, step ${ctx.stepInEpoch}): its mean over the last ${t.window} steps is ` +
          `${fmt(mean)}, ${why}. The likely cause is the learning rate (--lr ${lr}${scaled}; ${ctx.config.optimizer.name}, ` +
          `${ctx.config.schedule.name} schedule, now ${ctx.lr.toPrecision(3)}), too high for this data and model`;
        const hint = `try --lr ${tenth(lr)} (10x lower)`;
        if (mode === 'stop') throw new TricksError(`${message}; stopped (--on-divergence stop)`, hint);
        ctx.logger.warn(`${message}. Try --lr ${tenth(lr)} (10x lower); --on-divergence stop ends such a run, off silences this`);
      });
    },
  });
