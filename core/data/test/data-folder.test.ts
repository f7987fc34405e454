import { expect } from 'chai';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { FolderDataset, loadFolder } from '../src/folder.js';
import { DatasetRegistry, TricksError } from '@tricks/core';
import { registerDatasets } from '../src/register.js';

/** A w x h RGB image whose colour says its class (red, green, blue dominant) and whose gradient says its index. */
async function writeImage(file: string, cls: number, k: number, w = 24, h = 18) {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      raw[o + cls] = 200;
      raw[o + ((cls + 1) % 3)] = (x * 5 + k * 20) & 255;
    }
  const img = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
  if (file.endsWith('.png')) await img.png().toFile(file);
  else if (file.endsWith('.webp')) await img.webp({ lossless: true }).toFile(file);
  else await img.jpeg({ quality: 95 }).toFile(file);
}

async function makeTree(root: string, classes: string[], perClass: number, exts = ['.png', '.jpg', '.webp']) {
  for (const [c, name] of classes.entries()) {
    mkdirSync(join(root, name), { recursive: true });
    for (let k = 0; k < perClass; k++) await writeImage(join(root, name, `img${k}${exts[k % exts.length]}`), c, k);
  }
}

describe('folder dataset', function () {
  this.timeout(20000);
  let cacheDir: string;
  beforeEach(() => {
    cacheDir = mkdtempSync(join(tmpdir(), 'tricks-cache-test-'));
  });

  it('uses train/ and val/ when they exist, maps class folders to labels, decodes JPEG, PNG and WebP', async () => {
    const root = mkdtempSync(join(tmpdir(), 'folder-'));
    await makeTree(join(root, 'train'), ['cat', 'dog', 'eel'], 3);
    await makeTree(join(root, 'val'), ['cat', 'dog', 'eel'], 1);
    const split = await registerDatasets(new DatasetRegistry()).create(`folder:${root}`, { size: 16, cacheDir } as never);
    expect(split.train.classNames).to.deep.equal(['cat', 'dog', 'eel']);
    expect(split.train.length).to.equal(9);
    expect(split.val.length).to.equal(3);
    expect(split.train.shape).to.deep.equal([16, 16, 3]);
    const b = await split.train.getBatch([0, 3, 7]);
    expect(Array.from(b.labels)).to.deep.equal([0, 1, 2]);
    // the dominant channel of each decoded image is its class colour
    for (let k = 0; k < 3; k++) {
      const px = b.images.subarray(k * 768 + 8 * 48 + 8 * 3, k * 768 + 8 * 48 + 8 * 3 + 3);
      expect(Array.from(px).indexOf(Math.max(...px)), `image ${k}`).to.equal(b.labels[k]);
      expect(Math.abs(px[b.labels[k]] - 200)).to.be.below(8);
    }
  });

  it('splits a flat class tree with valSplit (stratified) and keeps size policies', async () => {
    const root = mkdtempSync(join(tmpdir(), 'folder-'));
    await makeTree(root, ['a', 'b'], 10, ['.png']);
    const split = await loadFolder(root, { valSplit: 0.2, cacheDir });
    expect(split.train.length).to.equal(16);
    expect(split.val.length).to.equal(4);
    expect(Array.from(split.val.labels).filter((l) => l === 0).length).to.equal(2);
    expect(split.train.shape, 'default size: the first image (small images)').to.deep.equal([18, 24, 3]);
    const fill = await loadFolder(root, { size: [9, 12], resize: 'contain', channels: 1, cacheDir, cache: false });
    expect(fill.train.shape).to.deep.equal([9, 12, 1]);
    const g = await fill.train.getBatch([0]);
    expect(g.images.length).to.equal(9 * 12);
    await expectTricksError(() => loadFolder(root, { size: -3 }), /dataOptions\.size/);
  });

  it('skips a corrupt or truncated image with a warning naming it, fills the slot from its class, and fails with strict', async () => {
    const root = mkdtempSync(join(tmpdir(), 'folder-'));
    await makeTree(root, ['a', 'b'], 4, ['.jpg']);
    const good = readFileSync(join(root, 'a', 'img1.jpg'));
    writeFileSync(join(root, 'a', 'img1.jpg'), good.subarray(0, Math.floor(good.length / 2))); // truncated JPEG
    writeFileSync(join(root, 'b', 'img2.jpg'), Buffer.from('this is not an image at all'));
    const warnings: string[] = [];
    const split = await loadFolder(root, { valSplit: 0, size: 8, cacheDir, warn: (m) => warnings.push(m) });
    const ds = split.train as FolderDataset;
    const all = Array.from({ length: ds.length }, (_, i) => i);
    const b = await ds.getBatch(all);
    expect(b.labels.length).to.equal(8);
    expect(Array.from(b.labels)).to.deep.equal(Array.from(ds.labels));
    expect(warnings.length).to.equal(2);
    expect(warnings.join('\n'))
      .to.include(join(root, 'a', 'img1.jpg'))
      .and.include(join(root, 'b', 'img2.jpg'))
      .and.include('2 skipped so far');
    expect(ds.skipped.size).to.equal(2);
    await ds.getBatch(all);
    expect(warnings.length, 'each file is named once').to.equal(2);
    const strict = await loadFolder(root, { valSplit: 0, size: 8, strict: true, cache: false });
    await expectTricksError(() => strict.train.getBatch(all), /img1\.jpg: unreadable image/);
  });

  it('accepts a JPEG that only makes libjpeg warn (sharp\'s own default failOn "warning" rejects it)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'folder-'));
    await makeTree(root, ['a', 'b'], 2, ['.jpg']);
    const file = join(root, 'a', 'img0.jpg');
    // a textured 96x96 image: enough scan data that the bytes we corrupt are not headers
    const tex = Buffer.alloc(64 * 64 * 3);
    for (let i = 0; i < tex.length; i++) tex[i] = (i * 7) & 255;
    await sharp(tex, { raw: { width: 64, height: 64, channels: 3 } })
      .jpeg({ quality: 90 })
      .toFile(file);
    const bad = Buffer.from(readFileSync(file));
    for (let i = bad.length - 400; i < bad.length - 100; i += 7) bad[i] ^= 0x5a; // corrupt entropy-coded data: "bad Huffman code"
    writeFileSync(file, bad);
    const warnings: string[] = [];
    const lenient = await loadFolder(root, { valSplit: 0, size: 64, cache: false, warn: (m) => warnings.push(m) });
    await lenient.train.getBatch([0, 1, 2, 3]);
    expect(warnings, 'decoded with the default failOn "truncated"').to.deep.equal([]);
    const strictest = await loadFolder(root, { valSplit: 0, size: 64, cache: false, failOn: 'warning', warn: (m) => warnings.push(m) });
    // Only the corrupt file is decoded here: libvips keeps one error buffer per process, so a decode
    // running at the same time can swap or clear the libjpeg text sharp puts in its message.
    const i0 = (strictest.train as FolderDataset).files.indexOf(file);
    expect(i0).to.be.at.least(0);
    await strictest.train.getBatch([i0]);
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.include('skipped unreadable image').and.include('img0.jpg').and.include('Corrupt JPEG data');
  });

  it('crops while decoding (decodeCrop): the box in source pixels, the same floats from workers and from the calling thread, unreadable files substituted', async () => {
    const root = mkdtempSync(join(tmpdir(), 'folder-'));
    await makeTree(root, ['a', 'b'], 4, ['.png', '.jpg']);
    // a grey PNG (one channel in the file) and an unreadable one
    await sharp(Buffer.alloc(30 * 20, 77), { raw: { width: 30, height: 20, channels: 1 } })
      .png()
      .toFile(join(root, 'a', 'grey.png'));
    writeFileSync(join(root, 'b', 'img3.jpg'), Buffer.from('not an image'));
    const warnings: string[] = [];
    const load = async (decodeWorkers: number) =>
      (await loadFolder(root, { valSplit: 0, size: 8, cache: false, decodeWorkers, warn: (m) => warnings.push(m) })).train as FolderDataset;
    const inThread = await load(0),
      pooled = await load(2);
    expect(inThread.decodeCrop).to.equal(true);
    const cached = (await loadFolder(root, { valSplit: 0, size: 8, cacheDir })).train;
    expect(cached.decodeCrop, 'the decoded cache holds whole images: no crop while decoding').to.equal(false);
    const all = Array.from({ length: inThread.length }, (_, i) => i);
    const sizes: string[] = [];
    const crop = (k: number, h: number, w: number) => {
      sizes.push(`${h}x${w}`);
      return { top: k % 3, left: (k * 5) % 7, height: h - 4, width: w - 7, flip: k % 2 === 1 };
    };
    const a = await inThread.getBatch(all, { crop });
    const b = await pooled.getBatch(all, { crop, into: new Float32Array(new SharedArrayBuffer(4 * all.length * 8 * 8 * 3 + 64)) });
    await pooled.close();
    expect(a.cropped).to.equal(true);
    expect(a.images.length).to.equal(0);
    expect(a.floats!.length).to.equal(all.length * 8 * 8 * 3);
    expect(Array.from(b.floats!)).to.deep.equal(Array.from(a.floats!));
    expect(Array.from(a.labels)).to.deep.equal(Array.from(inThread.labels));
    expect(new Set(sizes)).to.deep.equal(new Set(['18x24', '20x30']));
    expect(Math.min(...a.floats!)).to.be.at.least(0);
    expect(Math.max(...a.floats!)).to.be.at.most(1);
    // the grey file's rows are widened to RGB: 77/255 everywhere
    const g = inThread.files.indexOf(join(root, 'a', 'grey.png'));
    const row = a.floats!.subarray(g * 192, (g + 1) * 192);
    expect(Math.max(...row.map((v) => Math.abs(v - 77 / 255)))).to.be.below(1e-6);
    expect(warnings.join('\n')).to.include(join(root, 'b', 'img3.jpg'));
    const bad = inThread.files.indexOf(join(root, 'b', 'img3.jpg'));
    expect(inThread.skipped.has(bad)).to.equal(true);
    // a crop outside the image is the plan's bug: an error, not a skipped file
    await expectTricksError(
      () => inThread.getBatch([0], { crop: () => ({ top: 0, left: 0, height: 99, width: 99, flip: false }) }),
      /is not inside/,
    );
  });

  it('caches decoded small images: a second epoch reads the cache, not the files', async () => {
    const root = mkdtempSync(join(tmpdir(), 'folder-'));
    await makeTree(root, ['a', 'b'], 5);
    const split = await loadFolder(root, { valSplit: 0, size: 12, cacheDir });
    const ds = split.train as FolderDataset;
    expect(ds.cacheFile).to.be.a('string');
    const all = Array.from({ length: ds.length }, (_, i) => i);
    const first = await ds.getBatch(all);
    await ds.flushCache();
    expect(existsSync(`${ds.cacheFile}.state`)).to.equal(true);
    for (const f of ['img0.png', 'img1.jpg', 'img2.webp']) rmSync(join(root, 'a', f)); // gone: only the cache can answer
    const second = await ds.getBatch(all);
    expect(Buffer.from(second.images).equals(Buffer.from(first.images))).to.equal(true);
    await ds.close();
    const noCache = await loadFolder(root, { valSplit: 0, size: 12, cacheDir, cache: false, warn: () => {} });
    expect((noCache.train as FolderDataset).cacheFile).to.equal(undefined);
  });

  it("validation images: torchvision's Resize(256) + CenterCrop(224) at size 224 (cropPct 0.875), training images cover 224", async () => {
    // 256x256 (and a wider 256x320) with a 16-px red frame around green: the centre 224 of a 256 image has no red
    const root = mkdtempSync(join(tmpdir(), 'folder-crop-'));
    const frame = async (file: string, w: number, h: number) => {
      const raw = Buffer.alloc(w * h * 3);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const edge = x < 16 || y < 16 || x >= w - 16 || y >= h - 16;
          raw[(y * w + x) * 3 + (edge ? 0 : 1)] = 255;
        }
      await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
        .png()
        .toFile(file);
    };
    for (const side of ['train', 'val'])
      for (const c of ['a', 'b']) {
        mkdirSync(join(root, side, c), { recursive: true });
        await frame(join(root, side, c, 'square.png'), 256, 256);
        await frame(join(root, side, c, 'wide.png'), 320, 256);
      }
    const redAt = (img: Uint8Array, x: number, y: number) => img[(y * 224 + x) * 3] > 128;
    const split = await loadFolder(root, { size: 224, cache: false });
    expect(split.val.shape).to.deep.equal([224, 224, 3]);
    expect(split.source)
      .to.include('images 224x224, from --image-size')
      .and.include('val: shorter side 256, centre crop 224 (cropPct 0.875)');
    const val = await split.val.getBatch([0, 1]);
    const train = await split.train.getBatch([0, 1]);
    for (const k of [0, 1]) {
      const v = val.images.subarray(k * 224 * 224 * 3, (k + 1) * 224 * 224 * 3);
      const t = train.images.subarray(k * 224 * 224 * 3, (k + 1) * 224 * 224 * 3);
      expect([redAt(v, 0, 0), redAt(v, 0, 112), redAt(v, 112, 0), redAt(v, 112, 112)], `val image ${k}`).to.deep.equal([
        false,
        false,
        false,
        false,
      ]);
      expect([redAt(t, 112, 0), redAt(t, 112, 223), redAt(t, 112, 112)], `train image ${k}`).to.deep.equal([true, true, false]);
    }
    // cropPct 1: the validation image is the training one
    const full = await loadFolder(root, { size: 224, cropPct: 1, cache: false });
    expect(Buffer.from((await full.val.getBatch([0])).images).equals(Buffer.from(train.images.subarray(0, 224 * 224 * 3)))).to.equal(true);
    // no size: the default for images over 64 px, said with the first image's size
    const dflt = await loadFolder(join(root, 'train'), { cache: false });
    expect(dflt.source).to.include('images 224x224, the default for images over 64 px (the first is 256x256; --image-size N to change)');
    await expectTricksError(() => loadFolder(root, { cropPct: 1.5 }), /dataOptions\.cropPct must be a number in \(0, 1\]/);
    await expectTricksError(() => loadFolder(root, { cropPct: 0.9, resize: 'fill' }), /cropPct applies to resize "cover" only/);
  });

  it('names a data option no format has, lets one of another format through, and refuses bad values', async () => {
    const root = mkdtempSync(join(tmpdir(), 'folder-'));
    await makeTree(root, ['a', 'b'], 3, ['.png']);
    const registry = registerDatasets(new DatasetRegistry());
    await expectTricksError(
      () => registry.create(`folder:${root}`, { sise: 64 }),
      /dataOptions\.sise: folder has no option "sise" \(did you mean "size"\?\)/,
    );
    // a preset's option for another format (cifar100's coarse) is ignored here; on the command line (strict) it is named
    expect((await registry.create(`folder:${root}`, { coarse: true, size: 8, cache: false })).train.shape).to.deep.equal([8, 8, 3]);
    expect(() => registry.checkOptions(`folder:${root}`, { coarse: true }, { strict: true })).to.throw(/it is an option of cifar100/);
    expect(() => registry.checkOptions('digits', { size: 64 }, { strict: true, what: () => '--image-size' })).to.throw(
      /^--image-size: digits has no option "size"/,
    );
    expect(registry.optionsOf('folder')).to.include.members(['valSplit', 'strict', 'size', 'cropPct', 'resize']);
    await expectTricksError(
      () => loadFolder(root, { failOn: 'sometimes' as never }),
      /dataOptions\.failOn must be none, truncated, error or warning/,
    );
    await expectTricksError(() => loadFolder(root, { cache: 'yes' as never }), /dataOptions\.cache must be true, false or "auto"/);
    await expectTricksError(
      () => loadFolder(root, { resize: 'crop' as never }),
      /dataOptions\.resize must be cover, contain or fill, got "crop"/,
    );
  });
});

async function expectTricksError(fn: () => Promise<unknown>, re: RegExp) {
  try {
    await fn();
  } catch (e) {
    expect(e).to.be.instanceOf(TricksError);
    expect((e as Error).message).to.match(re);
    return;
  }
  expect.fail('expected a TricksError');
}
