import { TricksError } from '../hooks/errors.js';
import { closest } from '../util/closest.js';
import type { DataSplit } from './dataset.js';

export interface DataOptions {
  /** Fraction held out for validation when the data has no split of its own. */
  valSplit?: number;
  /** Fail on unreadable items instead of skipping them. */
  strict?: boolean;
  [key: string]: unknown;
}

/** Builds a DataSplit from the argument after the colon of a spec such as `fashion-mnist:/data/fm`. */
export type DatasetFactory = (arg: string | undefined, options: DataOptions) => DataSplit | Promise<DataSplit>;

/** The dataset formats known by name (empty in core: @tricks/data registers the built-in ones). A service: rebind or `register` to add formats. */
export class DatasetRegistry {
  private readonly factories = new Map<string, { factory: DatasetFactory; description: string }>();

  register(name: string, factory: DatasetFactory, description = ''): void {
    this.factories.set(name, { factory, description });
  }

  has(name: string): boolean {
    return this.factories.has(name);
  }

  list(): { name: string; description: string }[] {
    return [...this.factories].map(([name, f]) => ({ name, description: f.description }));
  }

  async create(spec: string, options: DataOptions = {}): Promise<DataSplit> {
    const colon = spec.indexOf(':');
    const name = colon < 0 ? spec : spec.slice(0, colon);
    const arg = colon < 0 ? undefined : spec.slice(colon + 1);
    const entry = this.factories.get(name);
    if (!entry) {
      const names = [...this.factories.keys()];
      throw new TricksError(
        `unknown dataset "${name}" in --data ${spec}${closest(name, names)}`,
        `available: ${names.join(', ')} (as NAME or NAME:DIR)`,
      );
    }
    return entry.factory(arg, options);
  }
}
