import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TricksError, InMemoryDataset, type DataSplit, type DataOptions } from '@tricks/core';

/**
 * CIFAR-10 and CIFAR-100 in their original binary formats (https://www.cs.toronto.edu/~kriz/cifar.html):
 * CIFAR-10: data_batch_1..5.bin and test_batch.bin, records of <1 label byte><3072 pixel bytes>;
 * CIFAR-100: train.bin and test.bin, records of <1 coarse byte><1 fine byte><3072 pixel bytes>.
 * Pixels are stored plane by plane (1024 R, 1024 G, 1024 B, row-major); we store HWC.
 */
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
const PIXELS = 32 * 32 * 3;

export interface CifarOptions {
  /** CIFAR-100 only: train on the 20 coarse superclasses instead of the 100 fine labels. */
  coarse?: boolean;
}

/** Parses the records of one binary file into HWC images and labels. */
export function parseCifarRecords(
  buf: Uint8Array,
  file: string,
  kind: 'cifar10' | 'cifar100',
  coarse = false,
): { images: Uint8Array; labels: Int32Array } {
  const labelBytes = kind === 'cifar10' ? 1 : 2;
  const rec = labelBytes + PIXELS;
  if (buf.length === 0 || buf.length % rec !== 0) {
    const other = kind === 'cifar10' ? 'cifar100' : 'cifar10';
    const hint =
      buf.length % ((kind === 'cifar10' ? 2 : 1) + PIXELS) === 0 && buf.length > 0
        ? `its size fits the ${other} format: use --data ${other}:DIR`
        : 'the file is truncated or not a CIFAR binary file: download it again (the "binary version" from https://www.cs.toronto.edu/~kriz/cifar.html)';
    throw new TricksError(`${file}: ${buf.length} bytes is not a whole number of ${kind} records of ${rec} bytes`, hint);
  }
  const n = buf.length / rec;
  const images = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  const maxLabel = kind === 'cifar10' ? 9 : coarse ? 19 : 99;
  for (let i = 0; i < n; i++) {
    const o = i * rec;
    const label = kind === 'cifar10' ? buf[o] : coarse ? buf[o] : buf[o + 1];
    if (label > maxLabel) {
      throw new TricksError(
        `${file}: record ${i} has label ${label}, outside 0..${maxLabel}`,
        'the file is corrupt or of the other CIFAR format',
      );
    }
    labels[i] = label;
    const src = o + labelBytes;
    const dst = i * PIXELS;
    for (let p = 0; p < 1024; p++) {
      images[dst + 3 * p] = buf[src + p];
      images[dst + 3 * p + 1] = buf[src + 1024 + p];
      images[dst + 3 * p + 2] = buf[src + 2048 + p];
    }
  }
  return { images, labels };
}

function concat(parts: { images: Uint8Array; labels: Int32Array }[]): { images: Uint8Array; labels: Int32Array } {
  const n = parts.reduce((s, p) => s + p.labels.length, 0);
  const images = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  let k = 0;
  for (const p of parts) {
    images.set(p.images, k * PIXELS);
    labels.set(p.labels, k);
    k += p.labels.length;
  }
  return { images, labels };
}

/** The directory holding the .bin files: DIR itself or its cifar-10-batches-bin / cifar-100-binary sub-folder. */
function resolveDir(dir: string, kind: 'cifar10' | 'cifar100'): string {
  const sub = kind === 'cifar10' ? 'cifar-10-batches-bin' : 'cifar-100-binary';
  if (existsSync(join(dir, sub))) return join(dir, sub);
  return dir;
}

function readNames(dir: string, file: string): string[] | undefined {
  const p = join(dir, file);
  if (!existsSync(p)) return undefined;
  const names = readFileSync(p, 'utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter(Boolean);
  return names.length ? names : undefined;
}

export function loadCifar(kind: 'cifar10' | 'cifar100', dirArg: string | undefined, options: DataOptions & CifarOptions = {}): DataSplit {
  const howTo = `pass --data ${kind}:DIR where DIR holds the binary version from https://www.cs.toronto.edu/~kriz/cifar.html (${kind === 'cifar10' ? 'data_batch_1.bin ... data_batch_5.bin, test_batch.bin' : 'train.bin, test.bin'})`;
  if (!dirArg) throw new TricksError(`${kind}: no directory given`, howTo);
  if (!existsSync(dirArg)) throw new TricksError(`${kind}: data directory ${dirArg} does not exist`, howTo);
  const dir = resolveDir(dirArg, kind);
  const files = readdirSync(dir);
  const coarse = kind === 'cifar100' && options.coarse === true;
  let trainFiles: string[], testFiles: string[];
  if (kind === 'cifar10') {
    trainFiles = files.filter((f) => /^data_batch_\d+\.bin$/.test(f)).sort();
    testFiles = files.filter((f) => f === 'test_batch.bin' || f === 'test.bin');
  } else {
    trainFiles = files.filter((f) => f === 'train.bin');
    testFiles = files.filter((f) => f === 'test.bin');
  }
  if (!trainFiles.length || !testFiles.length) {
    throw new TricksError(`${kind}: ${dir} has no ${!trainFiles.length ? 'training' : 'test'} files`, howTo);
  }
  const read = (names: string[]) =>
    concat(
      names.map((f) => {
        const p = join(dir, f);
        return parseCifarRecords(readFileSync(p), p, kind, coarse);
      }),
    );
  const train = read(trainFiles);
  const test = read([testFiles[0]]);
  let classNames: string[];
  let numClasses: number;
  if (kind === 'cifar10') {
    numClasses = 10;
    classNames = readNames(dir, 'batches.meta.txt') ?? CIFAR10_CLASSES;
  } else {
    numClasses = coarse ? 20 : 100;
    classNames =
      readNames(dir, coarse ? 'coarse_label_names.txt' : 'fine_label_names.txt') ?? Array.from({ length: numClasses }, (_, i) => String(i));
  }
  if (classNames.length !== numClasses) classNames = Array.from({ length: numClasses }, (_, i) => classNames[i] ?? String(i));
  const name = coarse ? `${kind}-coarse` : kind;
  return {
    train: new InMemoryDataset(`${name}-train`, train.images, train.labels, [32, 32, 3], numClasses, classNames),
    val: new InMemoryDataset(`${name}-test`, test.images, test.labels, [32, 32, 3], numClasses, classNames),
    source: `${kind}:${dir}${coarse ? ' (coarse labels)' : ''}`,
  };
}

/** Writes records in the CIFAR binary format (used by tests and by tools that make small CIFAR-format files). */
export function encodeCifarRecords(
  images: Uint8Array,
  labels: ArrayLike<number>,
  kind: 'cifar10' | 'cifar100',
  coarseLabels?: ArrayLike<number>,
): Uint8Array {
  const labelBytes = kind === 'cifar10' ? 1 : 2;
  const rec = labelBytes + PIXELS;
  const out = new Uint8Array(labels.length * rec);
  for (let i = 0; i < labels.length; i++) {
    const o = i * rec;
    if (kind === 'cifar10') out[o] = labels[i];
    else {
      out[o] = coarseLabels ? coarseLabels[i] : 0;
      out[o + 1] = labels[i];
    }
    for (let p = 0; p < 1024; p++) {
      for (let c = 0; c < 3; c++) out[o + labelBytes + c * 1024 + p] = images[i * PIXELS + 3 * p + c];
    }
  }
  return out;
}
