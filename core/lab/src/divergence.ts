import { definePlugin, STAGE_REPORT, TricksError, type StepStats, type TrainContext } from '@tricks/core';

/** The thresholds of the divergence check (the defaults are what every run gets). */
export interface DivergenceOptions {
  /** Steps into an epoch before its running loss is judged (fewer when the epoch is shorter). */
  minSteps?: number;
  /** First epoch: diverging when its running loss exceeds this many times the first step's loss. */
  overStart?: number;
  /** Later epochs: ... this many times the first epoch's mean training loss. */
  overFirstEpoch?: number;
  /** Later epochs: ... this many times the lowest epoch mean so far. */
  overBest?: number;
}

export const DIVERGENCE_DEFAULTS: Required<DivergenceOptions> = { minSteps: 10, overStart: 2, overFirstEpoch: 1.5, overBest: 10 };

/** A loss for the log: 4 decimals, or 4 digits when it is huge. */
const fmt = (v: number) => (Math.abs(v) < 1e4 ? v.toFixed(4) : v.toPrecision(4));

/** A learning rate a tenth of `lr`, written shortly (0.1 -> 0.01, 0.003 -> 0.0003). */
const tenth = (lr: number) => String(Number((lr / 10).toPrecision(3)));

/**
 * The divergence check. It judges the epoch's running training loss, the mean that stepEnd reports, the progress
 * bar shows and the epoch's train_loss becomes, once the epoch has `minSteps` steps: in the first epoch against the
 * first step's loss (the untrained model's, about ln(classes)); later against the first epoch's mean and the lowest
 * epoch mean so far. A short spike that the run recovers from (the quick start has one at its OneCycle peak) moves
 * that mean little; a run that keeps a high loss does. The log says so once, with the likely cause (the learning
 * rate, for this data and model) and the flag to change it. Nothing stops unless config.divergence is 'stop' (the
 * run then fails with that message, the last checkpoint intact); 'off' turns the check off. NaN and infinite
 * losses are the trainer's own stop.
 */
export const divergenceCheck = (o: DivergenceOptions = {}) =>
  definePlugin({
    name: 'tricks:divergence',
    description: 'warns once when the training loss diverges (the learning rate), naming the flag to change it',
    apply(api) {
      const t = { ...DIVERGENCE_DEFAULTS, ...o };
      let start: number | undefined;
      let warned = false;
      api.hooks.stepEnd.tap({ name: 'tricks:divergence', stage: STAGE_REPORT }, (ctx: TrainContext, s: StepStats) => {
        const mode = ctx.config.divergence ?? 'warn';
        if (mode === 'off' || warned || !(s.seen > 0) || !Number.isFinite(s.loss)) return;
        // the first step's loss is the untrained model's; after a resume, the first epoch's mean stands in for it
        start ??= ctx.metrics[0]?.train_loss ?? s.loss;
        if (s.seen < Math.min(t.minSteps, ctx.stepsPerEpoch) * ctx.config.batchSize) return;
        const past = ctx.metrics.map((m) => m.train_loss).filter(Number.isFinite);
        const first = past[0];
        const best = Math.min(...past);
        let why: string | undefined;
        if (first === undefined) {
          if (s.loss > t.overStart * start) why = `over ${t.overStart}x the first step's ${fmt(start)} (the untrained model)`;
        } else if (s.loss > t.overFirstEpoch * first) why = `over ${t.overFirstEpoch}x the first epoch's ${fmt(first)}`;
        else if (s.loss > t.overBest * best) why = `${(s.loss / best).toFixed(1)}x the lowest epoch's, ${fmt(best)}`;
        if (!why) return;
        warned = true;
        const lr = ctx.config.optimizer.lr;
        const scaled = ctx.baseLr !== lr ? `, ${ctx.baseLr.toPrecision(3)} after plugins` : '';
        const message =
          `the training loss is diverging: epoch ${ctx.epoch + 1}'s mean so far (${s.seen / ctx.config.batchSize} steps) is ` +
          `${fmt(s.loss)}, ${why}. The likely cause is the learning rate (--lr ${lr}${scaled}; ${ctx.config.optimizer.name}, ` +
          `${ctx.config.schedule.name} schedule, now ${ctx.lr.toPrecision(3)}), too high for this data and model`;
        if (mode === 'stop')
          throw new TricksError(
            `${message}; stopped (--on-divergence stop)`,
            `try --lr ${tenth(lr)} (10x lower), or let tricks lr-find suggest one (same flags)`,
          );
        ctx.logger.warn(
          `${message}. Try --lr ${tenth(lr)} (10x lower), or let tricks lr-find suggest one (same flags); --on-divergence stop ends such a run, off silences this`,
        );
      });
    },
  });
