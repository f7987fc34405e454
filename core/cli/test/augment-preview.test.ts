import { expect } from 'chai';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import sharp from 'sharp';
import { augmentPreview, channelAffineInverse } from '../src/augment-preview.js';

describe('augment-preview', function () {
  this.timeout(30000);
  before(async () => {
    await tf.setBackend('wasm');
  });

  it('undoes a per-channel normalization for display', () => {
    const before = Float32Array.from([0.1, 0.5, 0.9, 0.3, 0.2, 0.7]);
    const after = before.map((v, i) => (v - [0.485, 0.456][i % 2]) / [0.229, 0.224][i % 2]);
    const inv = channelAffineInverse(before, Float32Array.from(after), 2)!;
    expect(inv.scale[0]).to.be.closeTo(0.229, 1e-5);
    expect(inv.shift[1]).to.be.closeTo(0.456, 1e-5);
    expect(channelAffineInverse(before, before, 2)).to.equal(null);
  });

  it('writes a PNG grid: rows = samples, columns = original + augmented versions, which differ from the original', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'preview-')), 'grid.png');
    const r = await augmentPreview({ data: 'digits', plugins: [['augment', { rotate: 20 }]], rows: 3, cols: 4, out, cell: 56 });
    expect(r.plugins).to.deep.equal(['augment']);
    const meta = await sharp(out).metadata();
    expect(meta.format).to.equal('png');
    expect([meta.width, meta.height]).to.deep.equal([5 * 58 + 2, 3 * 58 + 2]);
    const { data } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    // the first tile (original) and the second (augmented) of row 0 differ
    let diff = 0;
    for (let y = 2; y < 58; y++)
      for (let x = 2; x < 58; x++) diff += Math.abs(data[(y * r.width + x) * 3] - data[(y * r.width + x + 58) * 3]);
    expect(diff).to.be.greaterThan(1000);
  });
});
