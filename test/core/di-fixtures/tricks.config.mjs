// A user's config file: settings, plugins, and `modules` that rebind services. It loads after every
// plugin's modules, so it may replace a service a plugin replaced (here: the optimizer registry).
import { ContainerModule } from 'inversify';
import { OptimizerRegistry, SGD, TOKENS } from '@tricks/core';

/** Every message the run logs, and every optimizer the run created (the test reads them). */
export const log = [];
export const created = [];

class ArrayLogger {
  info(m) {
    log.push(m);
  }
  warn(m) {
    log.push(`warning: ${m}`);
  }
  debug() {}
}

/** The user's optimizer registry: every name gets SGD with Nesterov momentum. */
class NesterovEverywhere extends OptimizerRegistry {
  create(name, opts) {
    created.push(name);
    return new SGD({ ...opts, momentum: 0.9, nesterov: true });
  }
}

export default {
  data: 'stripes',
  model: { name: 'small-cnn', options: { width: 8 } },
  plugins: ['acme'],
  optimizer: { name: 'lion', lr: 0.001 },
  modules: [
    new ContainerModule(({ rebind }) => {
      rebind(TOKENS.Logger).toConstantValue(new ArrayLogger());
      rebind(TOKENS.Optimizers).toConstantValue(new NesterovEverywhere());
    }),
  ],
};
