import { expect } from 'chai';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadIdxDataset, parseIdx } from '../src/idx.js';
import { loadDigits } from '../src/digits.js';
import { TricksError } from '@tricks/core';
import { tmp } from './helpers.js';

function idx(dims: number[], data: Uint8Array): Uint8Array {
  const head = new Uint8Array(4 + 4 * dims.length);
  const v = new DataView(head.buffer);
  head[2] = 8;
  head[3] = dims.length;
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

describe('IDX and digits data', () => {
  it('reads raw and gzip IDX files', () => {
    const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i);
    expect(parseIdx(idx([2, 3, 4], data), 'x').dims).to.deep.equal([2, 3, 4]);
    const g = parseIdx(gzipSync(idx([2, 3, 4], data)), 'x.gz');
    expect(Array.from(g.data)).to.deep.equal(Array.from(data));
  });

  it('names the file and the problem for corrupt, truncated and bad-magic files', () => {
    expect(() => parseIdx(Uint8Array.from([0x12, 0x34, 0x56, 0x78, 1, 2]), '/d/f')).to.throw(
      TricksError,
      /\/d\/f: not an IDX file \(bad magic number 12 34 56 78/,
    );
    expect(() => parseIdx(idx([10, 28, 28], new Uint8Array(100)), '/d/t')).to.throw(
      TricksError,
      /\/d\/t: truncated IDX file: header promises 7840 bytes/,
    );
    expect(() => parseIdx(Uint8Array.from([0x1f, 0x8b, 1, 2, 3]), '/d/g.gz')).to.throw(TricksError, /\/d\/g\.gz: corrupt gzip data/);
  });

  it('loads a Fashion-MNIST-layout directory and checks labels against images', () => {
    const dir = tmp('tricks-idx-');
    mkdirSync(dir, { recursive: true });
    const img = (n: number) => idx([n, 28, 28], new Uint8Array(n * 784).fill(7));
    const lbl = (labels: number[]) => idx([labels.length], Uint8Array.from(labels));
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(img(3)));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte'), lbl([1, 2, 3]));
    writeFileSync(join(dir, 't10k-images-idx3-ubyte'), img(2));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), lbl([4]));
    expect(() => loadIdxDataset('fashion-mnist', dir)).to.throw(
      TricksError,
      /t10k-images-idx3-ubyte: 2 images but .*t10k-labels-idx1-ubyte has 1 labels/,
    );
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), lbl([4, 9]));
    const d = loadIdxDataset('fashion-mnist', dir);
    expect([d.train.length, d.val.length, d.train.shape]).to.deep.equal([3, 2, [28, 28, 1]]);
    expect(() => loadIdxDataset('fashion-mnist', join(dir, 'nope'))).to.throw(
      TricksError,
      /data directory .*nope does not exist[\s\S]*apt-get install dataset-fashion-mnist/,
    );
  });

  it('embeds 10k real digits with a fixed stratified validation split', () => {
    const d = loadDigits();
    expect(d.train.length + d.val.length).to.be.within(9900, 10100);
    const counts = new Array(10).fill(0);
    d.val.labels.forEach((l) => counts[l]++);
    expect(Math.min(...counts)).to.be.greaterThan(80);
    expect(Array.from(loadDigits().val.labels.slice(0, 50))).to.deep.equal(Array.from(d.val.labels.slice(0, 50)));
  });
});
