// Also replaces the optimizer service: loaded with tricks-plugin-acme, the two conflict.
import { ContainerModule } from 'inversify';
import { definePlugin, OptimizerRegistry, TOKENS } from '@tricks/core';

export default definePlugin({
  name: 'rival',
  description: 'replaces the optimizer registry too',
  apply() {},
  modules: () => [new ContainerModule(({ rebind }) => void rebind(TOKENS.Optimizers).toConstantValue(new OptimizerRegistry()))],
});
