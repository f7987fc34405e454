import type { LayersModel } from '@tensorflow/tfjs-layers';
import { TricksError } from '../hooks/errors.js';
import type { Logger } from '../io/logger.js';
import type { TricksOptimizer } from '../optim/optimizer.js';
import type { RngState } from '../util/rng.js';
import type { PluginState } from './context.js';

export const CHECKPOINT_FORMAT = 1;

/** Everything a run needs to continue exactly where it stopped. */
export interface TrainerState {
  format: number;
  /** Next epoch to run (and the step within it, when the run stopped mid-epoch). */
  epoch: number;
  stepInEpoch: number;
  step: number;
  rng: RngState;
  /** The generator behind tfjs's own random ops (dropout, initializers). */
  tfRng: RngState;
  configHash: string;
  config: unknown;
  metrics: unknown[];
  /** Running sums of the interrupted epoch. */
  partial?: { lossSum: number; seen: number; seconds: number };
  plugins: Record<string, unknown>;
}

export interface Checkpointer {
  save(
    dir: string,
    parts: { model: LayersModel; optimizer: TricksOptimizer; state: TrainerState; plugins: Map<string, PluginState> },
  ): Promise<void>;
  /** Undefined when there is no checkpoint in dir. */
  exists(dir: string): string | undefined;
  loadState(dir: string): Promise<TrainerState>;
  restore(dir: string, parts: { model: LayersModel; optimizer: TricksOptimizer; plugins: Map<string, PluginState> }): Promise<TrainerState>;
}

/**
 * The default when no checkpoint store is bound (a bare core trainer): nothing is written and a run cannot
 * resume; it says so once. @tricks/checkpoint's crash-safe store is what `createStandardTrainer` binds.
 */
export class NoCheckpointer implements Checkpointer {
  private warned = false;
  constructor(private readonly logger?: Logger) {}
  exists(): undefined {
    return undefined;
  }
  async save(): Promise<void> {
    if (!this.warned) this.logger?.warn(`checkpoints are off: no checkpoint store is bound (${HINT})`);
    this.warned = true;
  }
  loadState(dir: string): Promise<TrainerState> {
    return Promise.reject(new TricksError(`cannot resume from ${dir}: no checkpoint store is bound`, HINT));
  }
  restore(dir: string): Promise<TrainerState> {
    return this.loadState(dir);
  }
}

const HINT = "apply @tricks/checkpoint's checkpointBuiltin (createStandardTrainer from @tricks/lab does)";
