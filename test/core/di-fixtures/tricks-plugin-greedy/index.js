// Binds the sampler a second time instead of rebinding it: an error that names the package.
import { ContainerModule } from 'inversify';
import { definePlugin, ShuffleSampler, TOKENS } from '@tricks/core';

export default definePlugin({
  name: 'greedy',
  description: 'binds a single-binding service twice',
  apply() {},
  modules: () => [new ContainerModule(({ bind }) => void bind(TOKENS.Sampler).toConstantValue(new ShuffleSampler()))],
});
