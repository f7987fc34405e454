import { TricksError } from '../hooks/errors.js';
import { closest } from '../util/closest.js';

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

/** Schedules by name (`schedule.name`). A service: register more or rebind it. */
export class ScheduleRegistry {
  private readonly factories = new Map<string, ScheduleFactory>();

  constructor() {
    this.register('constant', () => (lr) => lr);
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
      throw new TricksError(`unknown schedule "${opts.name}" (option schedule.name)${closest(opts.name, this.names())}`, `available: ${this.names().join(', ')}`);
    }
    return f(opts);
  }
}
