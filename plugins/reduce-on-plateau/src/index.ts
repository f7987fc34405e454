import {
  definePlugin,
  monitoredMetric,
  STAGE_REPORT,
  TricksError,
  type EpochMetrics,
  type JSONSchema,
  type TrainContext,
} from '@tricks/core';

export const PLUGIN_NAME = 'reduce-on-plateau';

export interface ReduceOnPlateauOptions {
  /** The epoch metric to watch (a key of the epoch's metrics row: val_loss, val_top1, train_loss, ...). */
  monitor: string;
  /** 'min': lower is better (a loss); 'max': higher is better (an accuracy). */
  mode: 'min' | 'max';
  /** new lr = lr * factor (< 1). */
  factor: number;
  /** Epochs without improvement tolerated: the lr drops when num_bad_epochs > patience (PyTorch). */
  patience: number;
  /** How much better than the best a value must be to count as an improvement. */
  threshold: number;
  /** 'rel': better than best * (1 -/+ threshold); 'abs': better than best -/+ threshold. */
  thresholdMode: 'rel' | 'abs';
  /** Epochs after a reduction during which bad epochs are not counted. */
  cooldown: number;
  /** The lr never goes below this. */
  minLr: number;
  /** A reduction smaller than eps is skipped. */
  eps: number;
}

export const DEFAULTS: ReduceOnPlateauOptions = {
  monitor: 'val_loss',
  mode: 'min',
  factor: 0.1,
  patience: 10,
  threshold: 1e-4,
  thresholdMode: 'rel',
  cooldown: 0,
  minLr: 0,
  eps: 1e-8,
};

export const schema: JSONSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    monitor: { type: 'string', minLength: 1, default: DEFAULTS.monitor },
    mode: { enum: ['min', 'max'], default: DEFAULTS.mode },
    factor: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1, default: DEFAULTS.factor },
    patience: { type: 'integer', minimum: 0, default: DEFAULTS.patience },
    threshold: { type: 'number', minimum: 0, default: DEFAULTS.threshold },
    thresholdMode: { enum: ['rel', 'abs'], default: DEFAULTS.thresholdMode },
    cooldown: { type: 'integer', minimum: 0, default: DEFAULTS.cooldown },
    minLr: { type: 'number', minimum: 0, default: DEFAULTS.minLr },
    eps: { type: 'number', minimum: 0, default: DEFAULTS.eps },
  },
};

/** The scheduler's state: what a checkpoint saves (best is null while it is still +-Infinity, for JSON). */
export interface PlateauState {
  best: number | null;
  numBadEpochs: number;
  cooldownCounter: number;
  /** The base lr the plateau logic has set (ctx.baseLr), or null before the first epoch. */
  baseLr: number | null;
}

/**
 * PyTorch's ReduceLROnPlateau (torch/optim/lr_scheduler.py) for one lr, without the optimizer:
 * step(metric, lr) returns the lr to use from now on. Same is_better, cooldown, min_lr and eps rules.
 */
export class Plateau {
  best: number;
  numBadEpochs = 0;
  cooldownCounter = 0;

  constructor(readonly o: Omit<ReduceOnPlateauOptions, 'monitor'>) {
    if (!(o.factor < 1)) throw new TricksError('reduce-on-plateau: factor should be < 1.0');
    this.best = this.worse;
  }

  /** +Infinity in mode min, -Infinity in mode max (PyTorch's mode_worse). */
  get worse(): number {
    return this.o.mode === 'min' ? Infinity : -Infinity;
  }

  get inCooldown(): boolean {
    return this.cooldownCounter > 0;
  }

  isBetter(a: number, best: number): boolean {
    const { mode, threshold, thresholdMode } = this.o;
    if (mode === 'min' && thresholdMode === 'rel') return a < best * (1 - threshold);
    if (mode === 'min') return a < best - threshold;
    if (thresholdMode === 'rel') return a > best * (threshold + 1);
    return a > best + threshold;
  }

  /** One epoch's metric: updates best / bad epochs / cooldown and returns the (possibly reduced) lr. */
  step(current: number, lr: number): number {
    if (this.isBetter(current, this.best)) {
      this.best = current;
      this.numBadEpochs = 0;
    } else {
      this.numBadEpochs += 1;
    }
    if (this.inCooldown) {
      this.cooldownCounter -= 1;
      this.numBadEpochs = 0; // bad epochs in cooldown are ignored
    }
    let next = lr;
    if (this.numBadEpochs > this.o.patience) {
      const reduced = Math.max(lr * this.o.factor, this.o.minLr);
      if (lr - reduced > this.o.eps) next = reduced;
      this.cooldownCounter = this.o.cooldown;
      this.numBadEpochs = 0;
    }
    return next;
  }

  save(): Omit<PlateauState, 'baseLr'> {
    return { best: Number.isFinite(this.best) ? this.best : null, numBadEpochs: this.numBadEpochs, cooldownCounter: this.cooldownCounter };
  }

  load(s: Omit<PlateauState, 'baseLr'>): void {
    this.best = s.best === null ? this.worse : s.best;
    this.numBadEpochs = s.numBadEpochs;
    this.cooldownCounter = s.cooldownCounter;
  }
}

/** The monitored value of an epoch's row, or a TricksError naming the option and the available keys (core's monitoredMetric). */
export const monitored = (metrics: EpochMetrics, monitor: string): number => monitoredMetric(metrics, monitor, PLUGIN_NAME);

export default definePlugin<ReduceOnPlateauOptions>({
  name: PLUGIN_NAME,
  description: "reduce the lr by a factor when a metric stops improving (PyTorch's ReduceLROnPlateau)",
  schema,
  apply(api, options) {
    const plateau = new Plateau(options);
    let ctxRef: TrainContext | undefined;
    // Restored by load() (after setup on a resume): the base lr the plateau had set before the cut.
    let restoredLr: number | null = null;

    api.hooks.setup.tapPromise({ name: PLUGIN_NAME }, async (ctx) => {
      ctxRef = ctx;
      if (restoredLr !== null) ctx.baseLr = restoredLr;
    });
    // After the other plugins' epoch taps and the metrics sink (STAGE_REPORT), before the checkpoint (STAGE_REPORT + 1),
    // so the checkpoint holds this epoch's decision.
    api.hooks.epoch.tapPromise({ name: PLUGIN_NAME, stage: STAGE_REPORT + 0.5 }, async (ctx, metrics) => {
      const current = monitored(metrics, options.monitor);
      const before = ctx.baseLr;
      ctx.baseLr = plateau.step(current, before);
      if (ctx.baseLr !== before)
        ctx.logger.info(
          `${PLUGIN_NAME}: epoch ${metrics.epoch}: ${options.monitor} ${current.toPrecision(4)} has not improved on ${plateau.best.toPrecision(4)} ` +
            `for ${options.patience + 1} epoch${options.patience ? 's' : ''}; base lr ${before.toPrecision(4)} -> ${ctx.baseLr.toPrecision(4)}`,
        );
    });

    return {
      state: {
        save: () => ({ json: { ...plateau.save(), baseLr: ctxRef ? ctxRef.baseLr : null } satisfies PlateauState }),
        load: (s) => {
          const j = s.json as PlateauState;
          plateau.load(j);
          restoredLr = j.baseLr;
          // The trainer reset ctx.baseLr from the config (and setup taps such as lr-scaling ran); set it back.
          if (ctxRef && restoredLr !== null) ctxRef.baseLr = restoredLr;
        },
      },
    };
  },
});
