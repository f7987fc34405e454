import { TricksError } from '../hooks/errors.js';
import { closest } from '../util/closest.js';
import { validate } from '../plugin/validate.js';
import type { JSONSchema } from '../plugin/define.js';

/** Where a run is, for a schedule: steps are global iterations, epochs may be fractional. */
export interface SchedulePoint {
  step: number;
  stepsPerEpoch: number;
  totalSteps: number;
}

export interface ScheduleOptions {
  name: string;
  [key: string]: unknown;
}

/** Learning rate as a function of the step; the trainer sets it on the optimizer every step. */
export type LrSchedule = (baseLr: number, p: SchedulePoint) => number;

export type ScheduleFactory = (opts: ScheduleOptions) => LrSchedule;

export interface CosineOptions {
  /** Linear warmup length in epochs (may be fractional); 0 = none. */
  warmupEpochs?: number;
  /** Learning rate at step 0 of the warmup; it rises linearly to the base lr. */
  warmupLr?: number;
  /** Floor of the cosine (PyTorch's eta_min). */
  etaMin?: number;
}

/**
 * Cosine annealing (Loshchilov and Hutter 2017, PyTorch's CosineAnnealingLR closed form) after an
 * optional linear warmup (Goyal et al. 2017; PyTorch's LinearLR then CosineAnnealingLR in a SequentialLR).
 * Per iteration: warmup lr(s) = warmupLr + (base - warmupLr) * s / W for s < W; then
 * lr(s) = etaMin + (base - etaMin) * (1 + cos(pi * (s - W) / (total - W))) / 2.
 */
export function cosineSchedule(o: CosineOptions = {}): LrSchedule {
  const warmupEpochs = o.warmupEpochs ?? 0;
  const warmupLr = o.warmupLr ?? 0;
  const etaMin = o.etaMin ?? 0;
  return (base, { step, stepsPerEpoch, totalSteps }) => {
    const w = Math.min(Math.round(warmupEpochs * stepsPerEpoch), totalSteps);
    if (step < w) return warmupLr + ((base - warmupLr) * step) / w;
    const span = Math.max(totalSteps - w, 1);
    const t = Math.min(step - w, span) / span;
    return etaMin + ((base - etaMin) * (1 + Math.cos(Math.PI * t))) / 2;
  };
}

export interface OneCycleOptions {
  /** Peak lr; default: the base lr (optimizer.lr, after lr-scaling). */
  maxLr?: number;
  /** Fraction of the steps spent rising (PyTorch pct_start). */
  pctStart?: number;
  /** Initial lr = maxLr / divFactor. */
  divFactor?: number;
  /** Final lr = initial lr / finalDivFactor. */
  finalDivFactor?: number;
}

/**
 * OneCycle (Smith and Topin 2018) exactly as PyTorch's OneCycleLR with anneal_strategy='cos' and
 * three_phase=False: cosine from maxLr/div up to maxLr over pctStart*total - 1 steps, then cosine down to
 * maxLr/div/finalDiv at step total - 1. It sets the lr only (no momentum cycling).
 */
export function oneCycleSchedule(o: OneCycleOptions = {}): LrSchedule {
  const pct = o.pctStart ?? 0.3;
  const div = o.divFactor ?? 25;
  const finalDiv = o.finalDivFactor ?? 1e4;
  const cos = (start: number, end: number, p: number) => end + ((start - end) / 2) * (Math.cos(Math.PI * p) + 1);
  return (base, { step, totalSteps }) => {
    const maxLr = o.maxLr ?? base;
    const initial = maxLr / div;
    const min = initial / finalDiv;
    const s = Math.min(step, totalSteps - 1);
    const end1 = pct * totalSteps - 1;
    const end2 = totalSteps - 1;
    if (s <= end1) return cos(initial, maxLr, end1 > 0 ? s / end1 : 1);
    return cos(maxLr, min, (s - end1) / (end2 - end1));
  };
}

/** StepLR (per epoch): lr = base * gamma^floor(epoch / stepSize). */
export function stepSchedule(o: { stepSize: number; gamma?: number }): LrSchedule {
  const gamma = o.gamma ?? 0.1;
  return (base, { step, stepsPerEpoch }) => base * Math.pow(gamma, Math.floor(Math.floor(step / stepsPerEpoch) / o.stepSize));
}

/** MultiStepLR (per epoch): lr = base * gamma^(number of milestones <= epoch). */
export function multiStepSchedule(o: { milestones: number[]; gamma?: number }): LrSchedule {
  const gamma = o.gamma ?? 0.1;
  return (base, { step, stepsPerEpoch }) => {
    const epoch = Math.floor(step / stepsPerEpoch);
    return base * Math.pow(gamma, o.milestones.filter((m) => m <= epoch).length);
  };
}

const num = (extra: Record<string, unknown> = {}) => ({ type: 'number', ...extra });
const schema = (properties: Record<string, unknown>, required: string[] = []): JSONSchema => ({
  type: 'object',
  additionalProperties: false,
  required,
  properties: { name: { type: 'string' }, ...properties },
});

/** Option schemas of the built-in schedules (defaults are filled in by validation). */
export const SCHEDULE_SCHEMAS: Record<string, JSONSchema> = {
  constant: schema({}),
  cosine: schema({
    warmupEpochs: num({ minimum: 0, default: 0 }),
    warmupLr: num({ minimum: 0, default: 0 }),
    etaMin: num({ minimum: 0, default: 0 }),
  }),
  onecycle: schema({
    maxLr: num({ exclusiveMinimum: 0 }),
    pctStart: num({ exclusiveMinimum: 0, maximum: 1, default: 0.3 }),
    divFactor: num({ exclusiveMinimum: 0, default: 25 }),
    finalDivFactor: num({ exclusiveMinimum: 0, default: 1e4 }),
  }),
  step: schema({ stepSize: { type: 'integer', minimum: 1 }, gamma: num({ exclusiveMinimum: 0, default: 0.1 }) }, ['stepSize']),
  multistep: schema(
    {
      milestones: { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 1 },
      gamma: num({ exclusiveMinimum: 0, default: 0.1 }),
    },
    ['milestones'],
  ),
};

/** Validates schedule options against a schema (named `schedule.<option>` in errors), filling defaults. */
function checked<T>(name: string, f: (o: T) => LrSchedule): ScheduleFactory {
  return (opts) => {
    const copy = { ...opts };
    validate(SCHEDULE_SCHEMAS[name]!, copy, `schedule "${name}"`, 'schedule', 'fix that schedule option in the config file or the preset');
    return f(copy as unknown as T);
  };
}

/** Schedules by name (`schedule.name`). A service: register more or rebind it. */
export class ScheduleRegistry {
  private readonly factories = new Map<string, ScheduleFactory>();

  constructor() {
    this.register(
      'constant',
      checked('constant', () => (lr) => lr),
    );
    this.register('cosine', checked('cosine', cosineSchedule));
    this.register('onecycle', checked('onecycle', oneCycleSchedule));
    this.register('step', checked('step', stepSchedule));
    this.register('multistep', checked('multistep', multiStepSchedule));
  }

  register(name: string, factory: ScheduleFactory): void {
    this.factories.set(name, factory);
  }

  names(): string[] {
    return [...this.factories.keys()];
  }

  create(opts: ScheduleOptions): LrSchedule {
    const f = this.factories.get(opts.name);
    if (!f) {
      throw new TricksError(
        `unknown schedule "${opts.name}" (option schedule.name)${closest(opts.name, this.names())}`,
        `available: ${this.names().join(', ')}`,
      );
    }
    return f(opts);
  }
}
