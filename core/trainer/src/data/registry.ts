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

/** The options every format accepts (valSplit, strict), whether it uses them or not. */
export const COMMON_DATA_OPTIONS: readonly string[] = ['valSplit', 'strict'];

/** The dataset formats known by name (empty in core: @tricks/data registers the built-in ones). A service: rebind or `register` to add formats. */
export class DatasetRegistry {
  private readonly factories = new Map<string, { factory: DatasetFactory; description: string; options?: readonly string[] }>();

  /**
   * Adds a format. `options` lists the dataOptions keys it reads beyond valSplit and strict: a key that no
   * registered format declares is then a typo, and create() fails naming it. A format that declares no list
   * accepts anything.
   */
  register(name: string, factory: DatasetFactory, description = '', options?: readonly string[]): void {
    this.factories.set(name, { factory, description, options });
  }

  /** The dataOptions keys a format reads (valSplit and strict included), or undefined when it declares none. */
  optionsOf(name: string): string[] | undefined {
    const o = this.factories.get(name)?.options;
    return o ? [...COMMON_DATA_OPTIONS, ...o] : undefined;
  }

  /**
   * Checks the keys of `options` against the format of `spec`. A key no registered format declares is an
   * error (a typo); with `strict`, so is a key this format does not declare (an option given on the command
   * line for this data); otherwise such a key is ignored (a preset's dataOptions written for another format).
   */
  checkOptions(spec: string, options: DataOptions, o: { strict?: boolean; what?: (key: string) => string } = {}): void {
    const name = spec.includes(':') ? spec.slice(0, spec.indexOf(':')) : spec;
    const own = this.optionsOf(name);
    if (!own) return;
    const known = new Set<string>(COMMON_DATA_OPTIONS);
    let declaredByAll = true;
    for (const f of this.factories.values()) {
      if (f.options) f.options.forEach((k) => known.add(k));
      else declaredByAll = false;
    }
    const what = o.what ?? ((k: string) => `dataOptions.${k}`);
    for (const key of Object.keys(options)) {
      // undefined is "not set"; a function (a callback such as folder's warn) can only come from code
      if (own.includes(key) || options[key] === undefined || typeof options[key] === 'function') continue;
      const elsewhere = [...this.factories].filter(([, f]) => f.options?.includes(key)).map(([n]) => n);
      if (!o.strict && (elsewhere.length || (!known.has(key) && !declaredByAll))) continue;
      throw new TricksError(
        `${what(key)}: ${name} has no option "${key}"${closest(key, own)}` +
          (elsewhere.length ? `; it is an option of ${elsewhere.join(', ')}` : ''),
        `the options of ${name}: ${own.join(', ')}; set them with --data-option key=value or "dataOptions" in a config file`,
      );
    }
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
    this.checkOptions(spec, options);
    return entry.factory(arg, options);
  }
}
