import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { TricksError, InMemoryDataset, type DataSplit } from '@tricks/core';

const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const DIGIT_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/** Parses an IDX file (raw or gzip): magic 0x00 0x00 type ndim, then ndim big-endian uint32 sizes, then data. */
export function parseIdx(buf: Uint8Array, file: string): { dims: number[]; data: Uint8Array } {
  let bytes = buf;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new TricksError(`${file}: corrupt gzip data (${(e as Error).message})`, 'download the file again');
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw new TricksError(
      `${file}: not an IDX file (bad magic number ${hex(bytes.subarray(0, 4))}, expected 00 00 08 0N)`,
      'download the file again',
    );
  }
  if (bytes[2] !== 0x08) throw new TricksError(`${file}: IDX element type 0x${bytes[2].toString(16)} is not unsigned byte (0x08)`);
  const ndim = bytes[3];
  if (ndim < 1 || ndim > 4) throw new TricksError(`${file}: invalid IDX header: ${ndim} dimensions`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 + 4 * ndim) throw new TricksError(`${file}: truncated IDX header`);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * ndim;
  if (bytes.length - start < count) {
    throw new TricksError(
      `${file}: truncated IDX file: header promises ${count} bytes of data (${dims.join('x')}), found ${bytes.length - start}`,
      'download the file again',
    );
  }
  return { dims, data: bytes.subarray(start, start + count) };
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}

function findFile(dir: string, stem: string): string | undefined {
  for (const name of [stem, `${stem}.gz`, stem.replace(/-idx(\d)-/, '.idx$1-'), `${stem.replace(/-idx(\d)-/, '.idx$1-')}.gz`]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

function loadPair(dir: string, prefix: 'train' | 't10k', name: string, classNames: string[]): InMemoryDataset {
  const imgFile = findFile(dir, `${prefix}-images-idx3-ubyte`);
  const lblFile = findFile(dir, `${prefix}-labels-idx1-ubyte`);
  if (!imgFile || !lblFile) {
    throw new TricksError(`${dir}: missing ${prefix}-images-idx3-ubyte[.gz] or ${prefix}-labels-idx1-ubyte[.gz]`);
  }
  const img = parseIdx(readFileSync(imgFile), imgFile);
  const lbl = parseIdx(readFileSync(lblFile), lblFile);
  if (img.dims.length !== 3) throw new TricksError(`${imgFile}: expected 3 dimensions (count, rows, cols), found ${img.dims.length}`);
  if (lbl.dims.length !== 1) throw new TricksError(`${lblFile}: expected 1 dimension (count), found ${lbl.dims.length}`);
  if (img.dims[0] !== lbl.dims[0]) throw new TricksError(`${imgFile}: ${img.dims[0]} images but ${lblFile} has ${lbl.dims[0]} labels`);
  const labels = Int32Array.from(lbl.data);
  const bad = labels.findIndex((l) => l >= classNames.length);
  if (bad >= 0) throw new TricksError(`${lblFile}: label ${labels[bad]} at index ${bad} is outside 0..${classNames.length - 1}`);
  return new InMemoryDataset(
    `${name}-${prefix}`,
    new Uint8Array(img.data),
    labels,
    [img.dims[1], img.dims[2], 1],
    classNames.length,
    classNames,
  );
}

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** fashion-mnist[:DIR] and mnist:DIR, from the IDX files (gzip or raw). */
export function loadIdxDataset(kind: 'fashion-mnist' | 'mnist', dir: string | undefined): DataSplit {
  const where = dir ?? (kind === 'fashion-mnist' ? FASHION_MNIST_DIR : undefined);
  const howTo =
    kind === 'fashion-mnist'
      ? 'install it with `apt-get install dataset-fashion-mnist` (it goes to /usr/share/datasets/fashion-mnist), or pass --data fashion-mnist:DIR with the four IDX files'
      : 'pass --data mnist:DIR, a directory with train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]';
  if (!where) throw new TricksError(`${kind}: no directory given`, howTo);
  if (!existsSync(where)) throw new TricksError(`${kind}: data directory ${where} does not exist`, howTo);
  const classes = kind === 'fashion-mnist' ? FASHION_CLASSES : DIGIT_CLASSES;
  return { train: loadPair(where, 'train', kind, classes), val: loadPair(where, 't10k', kind, classes), source: `${kind}:${where}` };
}
