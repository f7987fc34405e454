import { ContainerModule } from 'inversify';
import { definePlugin, TOKENS, type Logger } from '@tricks/core';
import { claimRunFolder } from './guard.js';
import { DirCheckpointer } from './store.js';

/**
 * The built-in that makes a trainer's output folder crash-safe: binds the generation checkpoint store
 * (TOKENS.Checkpointer) and, first thing at setup, claims OUT (lock, guard against another run, debris).
 */
export const checkpointBuiltin = definePlugin({
  name: 'tricks:run-folder',
  description: 'crash-safe checkpoint generations (SHA-256 manifests, fallback), a lock on OUT, no run overwritten without --overwrite',
  apply(api) {
    let release: (() => void) | undefined;
    api.hooks.setup.tapPromise({ name: 'tricks:run-folder', stage: -1e9 }, async (ctx) => {
      release = claimRunFolder(ctx.out, { resumed: ctx.resumed, overwrite: ctx.overwrite, logger: ctx.logger });
    });
    api.hooks.teardown.tapPromise({ name: 'tricks:run-folder', stage: 1e9 }, async () => {
      release?.();
      release = undefined;
    });
  },
  modules: () => [
    new ContainerModule(({ rebind }) => {
      rebind(TOKENS.Checkpointer)
        .toResolvedValue((l: Logger) => new DirCheckpointer(l), [TOKENS.Logger])
        .inSingletonScope();
    }),
  ],
});
