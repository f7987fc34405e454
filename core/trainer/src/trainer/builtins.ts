import { join } from 'node:path';
import { STAGE_REPORT } from '../hooks/hooks.js';
import { writeFileAtomic } from '../io/atomic.js';
import { definePlugin, type PluginDefinition } from '../plugin/define.js';
import type { TrainerState } from './checkpoint.js';
import type { MetricsSink } from './sinks.js';

/** What the trainer hands its own built-in plugins (user plugins get the PluginApi only). */
export interface BuiltinAccess {
  sinks: MetricsSink[];
  /** Writes OUT/checkpoint from the run's state now (with the interrupted epoch's sums, if any). */
  save(partial?: TrainerState['partial']): Promise<void>;
}

/** Every bound MetricsSink: opened at setup, one row per epoch after the plugins' taps, closed on every exit. */
export const metricsSinks = (a: BuiltinAccess) =>
  definePlugin({
    name: 'tricks:metrics',
    description: 'writes every epoch to the bound metrics sinks (metrics.jsonl by default)',
    apply(api) {
      api.hooks.setup.tapPromise({ name: 'tricks:metrics', stage: STAGE_REPORT }, async (ctx) => {
        for (const s of a.sinks) await s.open(ctx.out, ctx.resumed);
      });
      api.hooks.epoch.tapPromise({ name: 'tricks:metrics', stage: STAGE_REPORT }, async (_ctx, m) => {
        for (const s of a.sinks) await s.write(m);
      });
      api.hooks.teardown.tapPromise({ name: 'tricks:metrics', stage: STAGE_REPORT }, async () => {
        for (const s of a.sinks) await s.close();
      });
    },
  });

/** OUT/checkpoint after every epoch (unless config.checkpoint is false) and when a signal stops the run. */
export const checkpoints = (a: BuiltinAccess) =>
  definePlugin({
    name: 'tricks:checkpoint',
    description: 'saves a resumable checkpoint after every epoch and on SIGTERM/SIGINT',
    apply(api) {
      api.hooks.epoch.tapPromise({ name: 'tricks:checkpoint', stage: STAGE_REPORT + 1 }, async (ctx) => {
        if (ctx.config.checkpoint) await a.save();
      });
      api.hooks.interrupt.tapPromise({ name: 'tricks:checkpoint', stage: STAGE_REPORT }, (_ctx, partial) => a.save(partial));
    },
  });

/** OUT/run.json: the resolved config, the backend and the result (artifacts without their models). */
export const runJson = () =>
  definePlugin({
    name: 'tricks:run-json',
    description: 'writes run.json at the end of a run',
    apply(api) {
      api.hooks.done.tapPromise({ name: 'tricks:run-json', stage: -1000 }, async (ctx, result) => {
        const artifacts = result.artifacts.map(({ model: _m, ...rest }) => rest);
        await writeFileAtomic(
          join(ctx.out, 'run.json'),
          JSON.stringify({ config: ctx.config, backend: ctx.backend, result: { ...result, artifacts } }, null, 1),
        );
      });
    },
  });

/** The trainer's own built-ins, applied before any other plugin (webpack's WebpackOptionsApply). */
export function coreBuiltins(a: BuiltinAccess): PluginDefinition[] {
  return [metricsSinks(a), checkpoints(a), runJson()] as PluginDefinition[];
}
