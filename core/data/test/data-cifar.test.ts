import { expect } from 'chai';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeCifarRecords, loadCifar, parseCifarRecords } from '../src/cifar.js';
import { DatasetRegistry, TricksError } from '@tricks/core';
import { registerDatasets } from '../src/register.js';

/** Small CIFAR-format files: pixel values encode (item, row, col, channel) so a wrong layout shows. */
function makeItems(n: number, seed: number) {
  const images = new Uint8Array(n * 3072);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++)
        for (let c = 0; c < 3; c++) {
          images[i * 3072 + (y * 32 + x) * 3 + c] = (seed + i * 7 + y * 3 + x * 5 + c * 60) & 255;
        }
  }
  return images;
}

describe('cifar binary loader', () => {
  it('reads CIFAR-10 records plane by plane into HWC', () => {
    const images = makeItems(3, 1);
    const labels = [4, 0, 9];
    const buf = encodeCifarRecords(images, labels, 'cifar10');
    expect(buf.length).to.equal(3 * 3073);
    // hand check of the on-disk layout: label, then the red plane, then green
    expect(buf[0]).to.equal(4);
    expect(buf[1 + 5]).to.equal(images[5 * 3]); // red of pixel (0,5)
    expect(buf[1 + 1024 + 5]).to.equal(images[5 * 3 + 1]); // green of pixel (0,5)
    const parsed = parseCifarRecords(buf, 'x.bin', 'cifar10');
    expect(Array.from(parsed.labels)).to.deep.equal(labels);
    expect(Buffer.from(parsed.images).equals(Buffer.from(images))).to.equal(true);
  });

  it('loads a CIFAR-10 directory (5 batches + test) through the registry', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'cifar10-')), 'cifar-10-batches-bin');
    mkdirSync(dir);
    for (let b = 1; b <= 5; b++)
      writeFileSync(join(dir, `data_batch_${b}.bin`), encodeCifarRecords(makeItems(2, b), [b, b + 1], 'cifar10'));
    writeFileSync(join(dir, 'test_batch.bin'), encodeCifarRecords(makeItems(3, 9), [7, 8, 9], 'cifar10'));
    const split = await registerDatasets(new DatasetRegistry()).create(`cifar10:${join(dir, '..')}`);
    expect(split.train.length).to.equal(10);
    expect(split.val.length).to.equal(3);
    expect(split.train.shape).to.deep.equal([32, 32, 3]);
    expect(split.train.classNames![0]).to.equal('airplane');
    expect(Array.from(split.train.labels)).to.deep.equal([1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
    const b = await split.train.getBatch([2]);
    expect(Buffer.from(b.images).equals(Buffer.from(makeItems(2, 2).subarray(0, 3072)))).to.equal(true);
  });

  it('reads CIFAR-100 fine labels, or coarse labels with the option', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cifar100-'));
    writeFileSync(join(dir, 'train.bin'), encodeCifarRecords(makeItems(4, 3), [99, 10, 0, 55], 'cifar100', [19, 1, 4, 3]));
    writeFileSync(join(dir, 'test.bin'), encodeCifarRecords(makeItems(1, 5), [42], 'cifar100', [7]));
    const fine = loadCifar('cifar100', dir);
    expect(fine.train.numClasses).to.equal(100);
    expect(Array.from(fine.train.labels)).to.deep.equal([99, 10, 0, 55]);
    const coarse = loadCifar('cifar100', dir, { coarse: true });
    expect(coarse.train.numClasses).to.equal(20);
    expect(Array.from(coarse.train.labels)).to.deep.equal([19, 1, 4, 3]);
    expect(Array.from(coarse.val.labels)).to.deep.equal([7]);
  });

  it('names the file and the fix for a truncated or wrong-format file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cifarbad-'));
    writeFileSync(join(dir, 'train.bin'), encodeCifarRecords(makeItems(2, 3), [1, 2], 'cifar10'));
    writeFileSync(join(dir, 'test.bin'), encodeCifarRecords(makeItems(1, 3), [1], 'cifar10'));
    expect(() => loadCifar('cifar100', dir)).to.throw(TricksError, /train\.bin.*\n.*cifar10/);
    const buf = encodeCifarRecords(makeItems(2, 3), [1, 2], 'cifar10').subarray(0, 5000);
    expect(() => parseCifarRecords(buf, 'cut.bin', 'cifar10')).to.throw(TricksError, /cut\.bin.*5000 bytes/);
    expect(() => loadCifar('cifar10', join(dir, 'nope'))).to.throw(TricksError, /does not exist/);
  });
});
