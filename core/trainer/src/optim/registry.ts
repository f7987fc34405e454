import { TricksError } from '../hooks/errors.js';
import { closest } from '../util/closest.js';
import { Adam, AdamW, SGD, type OptimizerOptions, type TricksOptimizer } from './optimizer.js';

export type OptimizerFactory = (opts: OptimizerOptions) => TricksOptimizer;

/** Optimizers by name (`optimizer.name` in the config). A service: register more or rebind it. */
export class OptimizerRegistry {
  private readonly factories = new Map<string, OptimizerFactory>();

  constructor() {
    this.register('sgd', (o) => new SGD(o as ConstructorParameters<typeof SGD>[0]));
    this.register('adam', (o) => new Adam(o as ConstructorParameters<typeof Adam>[0]));
    this.register('adamw', (o) => new AdamW(o as ConstructorParameters<typeof AdamW>[0]));
  }

  register(name: string, factory: OptimizerFactory): void {
    this.factories.set(name, factory);
  }

  names(): string[] {
    return [...this.factories.keys()];
  }

  create(name: string, opts: OptimizerOptions): TricksOptimizer {
    const f = this.factories.get(name);
    if (!f) {
      throw new TricksError(
        `unknown optimizer "${name}" (option optimizer.name)${closest(name, this.names())}`,
        `available: ${this.names().join(', ')}`,
      );
    }
    return f(opts);
  }
}
