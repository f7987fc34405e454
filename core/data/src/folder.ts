import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, read, readdirSync, statSync, write } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { DecodePool, decodePool } from './decode-pool.js';
import {
  TricksError,
  stratifiedSplit,
  type BatchOptions,
  type DataSplit,
  type Dataset,
  type DecodeCrop,
  type RawBatch,
  type DataOptions,
  type ResizePolicy,
} from '@tricks/core';

/**
 * `folder:DIR`: ImageNet-style class sub-folders (DIR/<class>/<image>), or DIR/train/<class>/... and
 * DIR/val/<class>/... when those exist. Images are decoded with sharp (JPEG, PNG, WebP, GIF, TIFF, AVIF),
 * resized to one size, and streamed: only the file list is in memory. A batch decodes its images in
 * parallel on libuv's thread pool (sharp's own threads), so the loader's prefetched batches decode while
 * the model trains. Small images go to a decoded-uint8 cache file, so later epochs do not decode again.
 *
 * Crop-at-decode (Dataset.decodeCrop, when the decoded cache is off): given BatchOptions.crop, each item is
 * decoded whole by sharp, cut as the crop asks (its box in the file's own pixels, after EXIF orientation),
 * resized to the dataset's size (bilinear, torch's taps: crop.ts), mirrored when asked and mapped to float32 by
 * BatchOptions.pixels (a folded Normalize), in decode workers (decode-pool.ts, worker_threads) writing into the
 * batch's shared buffer: the training thread gets float rows that need no float crop, no / 255 and no Normalize.
 * The augment plugin asks for it with its RandomResizedCrop (a DecodePlan); the source size comes from the file's
 * header, once per item. `decodeWorkers` (or TRICKS_DECODE_WORKERS) sets the number of workers, 0 none.
 *
 * Unreadable images are skipped with a warning naming the file and the running count; the slot is filled
 * with the next readable image of the same class, so batches keep their size and labels. With `strict`
 * the first unreadable image fails the run with a TricksError naming it.
 */
export interface FolderOptions extends DataOptions {
  /** Output size: a side, or [height, width] (`--image-size`). Default: the first image's size when both sides are at most 64, else 224. */
  size?: number | [number, number];
  /**
   * Validation only, with resize 'cover': the fraction of the resized image kept by the centre crop (timm's
   * crop_pct). The shorter side goes to floor(size / cropPct), then the centre size x size is kept: 0.875 is
   * torchvision's ImageNet evaluation, Resize(256) + CenterCrop(224). Default 0.875 when the images are
   * resized (a size given, or the 224 default), 1 when the loader takes the first image's own size (<= 64 px).
   * Training images are scaled to cover the size and centre-cropped; their random crops come from the augment
   * plugin (RandomResizedCrop).
   */
  cropPct?: number;
  /** cover: scale the shorter side, centre crop (default); contain: fit inside, pad black; fill: stretch. */
  resize?: 'cover' | 'contain' | 'fill';
  /** 3 (RGB, default) or 1 (grayscale). */
  channels?: 1 | 3;
  /**
   * sharp's failOn level. Default 'truncated': a truncated file is unreadable (as PIL says), a file that
   * only makes libjpeg/libpng warn is accepted (sharp's own default, 'warning', rejects those).
   */
  failOn?: 'none' | 'truncated' | 'error' | 'warning';
  /** Decoded-uint8 cache: 'auto' (on for images of at most 128x128 pixels), true, false. */
  cache?: boolean | 'auto';
  /** Where cache files go (default: <tmpdir>/tricks-cache). */
  cacheDir?: string;
  /** Called with each warning (default: console.warn). */
  warn?: (message: string) => void;
  /** Workers for crop-at-decode: default TRICKS_DECODE_WORKERS or the cores (at most 4); 0 decodes on the calling thread. */
  decodeWorkers?: number;
}

/** The dataOptions keys the folder format reads (beyond valSplit and strict). */
export const FOLDER_OPTIONS: readonly string[] = ['size', 'cropPct', 'resize', 'channels', 'failOn', 'cache', 'cacheDir', 'decodeWorkers'];

/** The file extensions the folder format (and `tricks predict`) read. */
export const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif']);

interface ClassTree {
  classNames: string[];
  files: string[];
  labels: Int32Array;
}

function listClasses(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}

function scanTree(dir: string, classNames: string[], what: string): ClassTree {
  const files: string[] = [];
  const labels: number[] = [];
  const known = new Set(classNames);
  for (const extra of listClasses(dir)) {
    if (!known.has(extra))
      throw new TricksError(
        `folder: ${what} has a class folder "${extra}" that the training set does not have (${join(dir, extra)})`,
        'every class of val/ must also be a sub-folder of train/',
      );
  }
  classNames.forEach((name, label) => {
    const cdir = join(dir, name);
    if (!existsSync(cdir)) return;
    for (const f of readdirSync(cdir).sort()) {
      if (f.startsWith('.') || !IMAGE_EXT.has(extname(f).toLowerCase())) continue;
      files.push(join(cdir, f));
      labels.push(label);
    }
  });
  return { classNames, files, labels: Int32Array.from(labels) };
}

export function resolveSize(opt: FolderOptions['size'], firstSize: [number, number] | undefined): [number, number] {
  return chooseSize(opt, firstSize).size;
}

/** The output size and why it was chosen (the loader reports it in the split's `source`). */
export function chooseSize(
  opt: FolderOptions['size'],
  firstSize: [number, number] | undefined,
): { size: [number, number]; why: string; own: boolean } {
  const first = firstSize ? `the first is ${firstSize[0]}x${firstSize[1]}` : 'no image could be read to probe';
  if (opt === undefined) {
    if (firstSize && firstSize[0] <= 64 && firstSize[1] <= 64)
      return { size: firstSize, why: "the first image's own size (at most 64 px)", own: true };
    return { size: [224, 224], why: `the default for images over 64 px (${first}; --image-size N to change)`, own: false };
  }
  const s: [number, number] = typeof opt === 'number' ? [opt, opt] : opt;
  if (!Array.isArray(s) || s.length !== 2 || !s.every((v) => Number.isInteger(v) && v > 0 && v <= 4096)) {
    throw new TricksError(
      `dataOptions.size must be a positive integer or [height, width], got ${JSON.stringify(opt)}`,
      'for example --image-size 224, --data-option size=[224,192] or "size": [224, 224] in dataOptions',
    );
  }
  return { size: s, why: 'from --image-size or dataOptions.size', own: false };
}

/** Shorter side and offsets of the validation resize: floor(size / cropPct), then the centre size (torchvision's Resize + CenterCrop). */
export function cropBox(size: [number, number], cropPct: number): { height: number; width: number; top: number; left: number } {
  const height = Math.floor(size[0] / cropPct + 1e-9),
    width = Math.floor(size[1] / cropPct + 1e-9);
  return { height, width, top: Math.floor((height - size[0]) / 2), left: Math.floor((width - size[1]) / 2) };
}

/** Decodes one file to uint8 HWC of the given size and channels. */
export async function decodeImage(
  file: string,
  size: [number, number],
  channels: 1 | 3,
  mode: 'cover' | 'contain' | 'fill',
  failOn: NonNullable<FolderOptions['failOn']>,
  cropPct = 1,
): Promise<Uint8Array> {
  let img = sharp(file, { failOn }).rotate(); // honour EXIF orientation, as PIL.ImageOps.exif_transpose would
  if (mode === 'cover' && cropPct < 1) {
    // torchvision's Resize(floor(size / cropPct)) + CenterCrop(size): covering the larger box, then its centre
    const box = cropBox(size, cropPct);
    img = img
      .resize({ height: box.height, width: box.width, fit: 'cover', position: 'centre' })
      .extract({ top: box.top, left: box.left, height: size[0], width: size[1] });
  } else img = img.resize({ height: size[0], width: size[1], fit: mode, position: 'centre', background: { r: 0, g: 0, b: 0, alpha: 1 } });
  img = channels === 1 ? img.greyscale() : img.toColourspace('srgb');
  const { data, info } = await img.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return toChannels(data, info, size, channels);
}

/** The size [height, width] of an image after EXIF orientation, from its header (no decode). */
export async function sourceSize(input: string | Buffer): Promise<[number, number]> {
  const m = await sharp(input).metadata();
  if (!m.height || !m.width) throw new Error('no image size in the header');
  return (m.orientation ?? 1) >= 5 ? [m.width, m.height] : [m.height, m.width];
}

function toChannels(data: Buffer, info: { width: number; height: number; channels: number }, size: [number, number], channels: 1 | 3) {
  if (info.width !== size[1] || info.height !== size[0])
    throw new Error(`decoded to ${info.width}x${info.height}, expected ${size[1]}x${size[0]}`);
  if (info.channels === channels) return new Uint8Array(data.buffer, data.byteOffset, data.length);
  // sharp keeps a grey image one-channel unless told otherwise: widen or narrow here
  const n = size[0] * size[1];
  const out = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++) {
    if (channels === 3) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = data[i * info.channels];
    else out[i] = data[i * info.channels];
  }
  return out;
}

/** Where a crop-at-decode row goes: its slot of the batch's shared float32 buffer and the pixel map. */
interface CropOut {
  buffer: SharedArrayBuffer;
  at: number;
  scale: number[];
  offset: number[];
}

/** The decoded-uint8 cache: one flat file of items plus a state byte per item (0 unknown, 1 cached, 2 unreadable). */
class DecodeCache {
  private fd?: number;
  private state?: Uint8Array;
  private dirty = 0;
  constructor(
    readonly path: string,
    readonly count: number,
    readonly itemSize: number,
  ) {}

  async init(): Promise<Uint8Array> {
    if (this.state) return this.state;
    mkdirSync(resolve(this.path, '..'), { recursive: true });
    try {
      const s = await readFile(`${this.path}.state`);
      this.state = s.length === this.count ? new Uint8Array(s) : new Uint8Array(this.count);
    } catch {
      this.state = new Uint8Array(this.count);
    }
    if (this.fd === undefined) {
      // a plain descriptor (not a FileHandle, which Node closes with a warning on GC); close() releases it
      this.fd = openSync(this.path, existsSync(this.path) ? 'r+' : 'w+');
      if (fstatSync(this.fd).size !== this.count * this.itemSize) ftruncateSync(this.fd, this.count * this.itemSize);
    }
    return this.state;
  }

  async read(i: number, into: Uint8Array, at: number): Promise<void> {
    await readAsync(this.fd!, into, at, this.itemSize, i * this.itemSize);
  }

  async write(i: number, data: Uint8Array): Promise<void> {
    await writeAsync(this.fd!, data, 0, this.itemSize, i * this.itemSize);
    this.state![i] = 1;
    this.dirty++;
  }

  markBad(i: number): void {
    this.state![i] = 2;
    this.dirty++;
  }

  /** Persists the state bytes (atomically) once enough items changed, or when forced. */
  async flush(force = false): Promise<void> {
    if (!this.state || this.dirty === 0 || (!force && this.dirty < 512)) return;
    this.dirty = 0;
    const tmp = `${this.path}.state.${process.pid}.tmp`;
    await writeFile(tmp, this.state);
    await rename(tmp, `${this.path}.state`);
  }

  async close(): Promise<void> {
    await this.flush(true);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

const readAsync = promisify(read);
const writeAsync = promisify(write) as (fd: number, b: Uint8Array, off: number, len: number, pos: number) => Promise<unknown>;

export class FolderDataset implements Dataset {
  readonly length: number;
  readonly numClasses: number;
  readonly itemSize: number;
  /** Files found unreadable so far, with the error sharp gave. */
  readonly skipped = new Map<number, string>();
  /** Crops while decoding (BatchOptions.crop) when the decoded cache is off: the cache holds whole images. */
  readonly decodeCrop: boolean;
  private readonly byClass: number[][];
  private readonly cache?: DecodeCache;
  /** Source [height, width] of each item once known (crop-at-decode reads the header once per item). */
  private readonly sizes: Int32Array;
  private ownPool?: DecodePool;

  constructor(
    readonly name: string,
    readonly files: string[],
    readonly labels: Int32Array,
    readonly classNames: string[],
    readonly shape: [number, number, number],
    private readonly opts: {
      mode: 'cover' | 'contain' | 'fill';
      failOn: NonNullable<FolderOptions['failOn']>;
      strict: boolean;
      cachePath?: string;
      warn: (m: string) => void;
      /** Validation: keep this fraction in the centre crop (1: none). */
      cropPct?: number;
      decodeWorkers?: number;
    },
  ) {
    this.length = files.length;
    this.numClasses = classNames.length;
    this.itemSize = shape[0] * shape[1] * shape[2];
    this.byClass = classNames.map(() => []);
    labels.forEach((l, i) => this.byClass[l].push(i));
    if (opts.cachePath) this.cache = new DecodeCache(opts.cachePath, this.length, this.itemSize);
    this.decodeCrop = !this.cache;
    this.sizes = new Int32Array(2 * this.length);
  }

  /** What decodeImage does to a file, for the model's metadata: sharp's resize (its default kernel, lanczos3). */
  get resize(): ResizePolicy {
    const { mode, cropPct = 1 } = this.opts;
    if (mode === 'fill') return { policy: 'resize', interpolation: 'lanczos3' };
    if (mode === 'contain') return { policy: 'resize-longer-pad', interpolation: 'lanczos3' };
    return { policy: 'resize-shorter-crop', cropPct, interpolation: 'lanczos3' };
  }

  get cacheFile(): string | undefined {
    return this.cache?.path;
  }

  /** Item i cropped as `crop` asks for its source size into out's slot (crop-at-decode; no cache); false: unreadable. */
  private async decodeCroppedItem(i: number, crop: (h: number, w: number) => DecodeCrop, out: CropOut): Promise<boolean> {
    if (this.skipped.has(i)) return false;
    try {
      let h = this.sizes[2 * i],
        w = this.sizes[2 * i + 1];
      if (h === 0) {
        [h, w] = await sourceSize(this.files[i]);
        this.sizes[2 * i] = h;
        this.sizes[2 * i + 1] = w;
      }
      const c = crop(h, w);
      if (c.top < 0 || c.left < 0 || c.height < 1 || c.width < 1 || c.top + c.height > h || c.left + c.width > w)
        throw new TricksError(`${this.name}: crop ${JSON.stringify(c)} is not inside the ${h}x${w} image ${this.files[i]}`);
      await this.pool.run({
        file: this.files[i],
        crop: c,
        size: [this.shape[0], this.shape[1]],
        channels: this.shape[2] as 1 | 3,
        failOn: this.opts.failOn,
        scale: out.scale,
        offset: out.offset,
        buffer: out.buffer,
        at: out.at,
      });
      return true;
    } catch (e) {
      if (e instanceof TricksError) throw e;
      this.fail(i, (e as Error).message.split('\n')[0]);
      return false;
    }
  }

  private get pool(): DecodePool {
    if (this.opts.decodeWorkers === undefined) return decodePool();
    return (this.ownPool ??= new DecodePool(this.opts.decodeWorkers));
  }

  private async decode(i: number): Promise<Uint8Array | undefined> {
    const state = this.cache ? await this.cache.init() : undefined;
    if (this.skipped.has(i)) return undefined;
    if (state?.[i] === 2) return this.fail(i, 'unreadable when the cache was filled');
    if (state?.[i] === 1) {
      const buf = new Uint8Array(this.itemSize);
      await this.cache!.read(i, buf, 0);
      return buf;
    }
    try {
      const data = await decodeImage(
        this.files[i],
        [this.shape[0], this.shape[1]],
        this.shape[2] as 1 | 3,
        this.opts.mode,
        this.opts.failOn,
        this.opts.cropPct,
      );
      if (this.cache) await this.cache.write(i, data);
      return data;
    } catch (e) {
      return this.fail(i, (e as Error).message.split('\n')[0]);
    }
  }

  private fail(i: number, msg: string): undefined {
    if (this.opts.strict) {
      throw new TricksError(
        `${this.files[i]}: unreadable image (${msg})`,
        'remove or replace the file, or drop --strict to skip unreadable images with a warning',
      );
    }
    this.skipped.set(i, msg);
    this.cache?.markBad(i);
    this.opts.warn(`${this.name}: skipped unreadable image ${this.files[i]} (${msg}); ${this.skipped.size} skipped so far`);
    return undefined;
  }

  /** An item of the same class that decodes, searched from i onwards; undefined when the whole class is unreadable. */
  private async substitute(i: number): Promise<Uint8Array | undefined> {
    const same = this.byClass[this.labels[i]];
    const start = same.indexOf(i);
    for (let k = 1; k < same.length; k++) {
      const data = await this.decode(same[(start + k) % same.length]);
      if (data) return data;
    }
    return undefined;
  }

  async getBatch(indices: ArrayLike<number>, options?: BatchOptions): Promise<RawBatch> {
    if (options?.crop && this.decodeCrop) return this.getCroppedBatch(indices, options.crop, options.pixels, options.into);
    const n = indices.length;
    const images = new Uint8Array(n * this.itemSize);
    const labels = new Int32Array(n);
    await Promise.all(
      Array.from({ length: n }, async (_, k) => {
        const i = indices[k];
        labels[k] = this.labels[i];
        let data = await this.decode(i);
        if (!data) data = await this.substitute(i);
        if (!data) throw this.noReadable(i);
        images.set(data, k * this.itemSize);
      }),
    );
    await this.cache?.flush();
    return { images, labels };
  }

  /** Crop-at-decode: float32 rows in a shared buffer the decode workers write. */
  private async getCroppedBatch(
    indices: ArrayLike<number>,
    cropOf: NonNullable<BatchOptions['crop']>,
    pixels: BatchOptions['pixels'],
    into: Float32Array | undefined,
  ): Promise<RawBatch> {
    const n = indices.length;
    const shared = into && into.buffer instanceof SharedArrayBuffer && into.length >= n * this.itemSize;
    const buffer = shared ? (into.buffer as SharedArrayBuffer) : new SharedArrayBuffer(n * this.itemSize * 4);
    const base = shared ? into.byteOffset / 4 : 0;
    const c = this.shape[2];
    const scale = pixels?.scale ?? new Array<number>(c).fill(1 / 255),
      offset = pixels?.offset ?? new Array<number>(c).fill(0);
    const labels = new Int32Array(n);
    await Promise.all(
      Array.from({ length: n }, async (_, k) => {
        const i = indices[k];
        labels[k] = this.labels[i];
        // the row's crop: the loader's draw is a function of the row's place, so a substitute gets the same draws
        const crop = (h: number, w: number) => cropOf(k, h, w);
        const out: CropOut = { buffer, at: base + k * this.itemSize, scale, offset };
        if (await this.decodeCroppedItem(i, crop, out)) return;
        const same = this.byClass[this.labels[i]];
        const start = same.indexOf(i);
        for (let s = 1; s < same.length; s++) if (await this.decodeCroppedItem(same[(start + s) % same.length], crop, out)) return;
        throw this.noReadable(i);
      }),
    );
    return { images: new Uint8Array(0), labels, cropped: true, floats: new Float32Array(buffer, base * 4, n * this.itemSize) };
  }

  private noReadable(i: number): TricksError {
    return new TricksError(
      `${this.name}: no readable image in class "${this.classNames[this.labels[i]]}"`,
      'check the files named in the warnings above',
    );
  }

  /** Writes the cache state now (getBatch does it every few hundred items). */
  async flushCache(): Promise<void> {
    await this.cache?.flush(true);
  }

  /** Writes the cache state and closes the cache file. */
  async close(): Promise<void> {
    await this.ownPool?.close();
    await this.cache?.close();
  }
}

async function probeSize(files: string[]): Promise<[number, number] | undefined> {
  for (const f of files.slice(0, 20)) {
    try {
      const m = await sharp(f).metadata();
      if (m.height && m.width) return (m.orientation ?? 1) >= 5 ? [m.width, m.height] : [m.height, m.width];
    } catch {
      // unreadable: try the next one
    }
  }
  return undefined;
}

function cachePathFor(
  dir: string,
  tree: ClassTree,
  shape: number[],
  mode: string,
  cacheDir: string,
  side: string,
  cropPct: number,
): string {
  const h = createHash('sha1');
  h.update(JSON.stringify({ dir: resolve(dir), shape, mode, v: 1, ...(cropPct !== 1 ? { cropPct } : {}) }));
  for (const f of tree.files) {
    const st = statSync(f, { throwIfNoEntry: false });
    h.update(`${f}\0${st?.size ?? -1}\0${st?.mtimeMs ?? 0}\n`);
  }
  return join(cacheDir, `folder-${side}-${h.digest('hex').slice(0, 16)}.u8`);
}

export async function loadFolder(dirArg: string | undefined, options: FolderOptions = {}): Promise<DataSplit> {
  const howTo = 'pass --data folder:DIR where DIR has one sub-folder of images per class (or train/ and val/ folders that each do)';
  if (!dirArg) throw new TricksError('folder: no directory given', howTo);
  const dir = resolve(dirArg);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new TricksError(`folder: ${dir} is not a directory`, howTo);
  const mode = options.resize ?? 'cover';
  if (!['cover', 'contain', 'fill'].includes(mode))
    throw new TricksError(
      `dataOptions.resize must be cover, contain or fill, got ${JSON.stringify(mode)}`,
      'for example --data-option resize=contain (fit inside, pad black)',
    );
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3)
    throw new TricksError(
      `dataOptions.channels must be 1 or 3, got ${JSON.stringify(channels)}`,
      'for example --data-option channels=1 (grayscale)',
    );
  const failOn = options.failOn ?? 'truncated';
  if (!['none', 'truncated', 'error', 'warning'].includes(failOn))
    throw new TricksError(
      `dataOptions.failOn must be none, truncated, error or warning, got ${JSON.stringify(failOn)}`,
      "for example --data-option failOn=error (sharp's levels, from the most lenient)",
    );
  if (options.cache !== undefined && ![true, false, 'auto'].includes(options.cache as never))
    throw new TricksError(
      `dataOptions.cache must be true, false or "auto", got ${JSON.stringify(options.cache)}`,
      'for example --data-option cache=false',
    );
  if (options.warn !== undefined && typeof options.warn !== 'function')
    throw new TricksError('dataOptions.warn must be a function (a programmatic option)', 'drop it from the data options');
  if (options.cropPct !== undefined) {
    if (typeof options.cropPct !== 'number' || !(options.cropPct > 0 && options.cropPct <= 1))
      throw new TricksError(
        `dataOptions.cropPct must be a number in (0, 1], got ${JSON.stringify(options.cropPct)}`,
        'for example --data-option cropPct=0.875 (torchvision: resize to 256, centre crop 224) or cropPct=1 (no crop)',
      );
    if (mode !== 'cover')
      throw new TricksError(`dataOptions.cropPct applies to resize "cover" only, not "${mode}"`, 'drop cropPct, or use resize=cover');
  }
  const warn = options.warn ?? ((m: string) => console.warn(`warning: ${m}`));

  let train: ClassTree, val: ClassTree;
  const hasSplit = existsSync(join(dir, 'train')) && existsSync(join(dir, 'val'));
  if (hasSplit) {
    const classNames = listClasses(join(dir, 'train'));
    train = scanTree(join(dir, 'train'), classNames, join(dir, 'train'));
    val = scanTree(join(dir, 'val'), classNames, join(dir, 'val'));
  } else {
    const classNames = listClasses(dir);
    const all = scanTree(dir, classNames, dir);
    const frac = options.valSplit ?? 0.1;
    if (!(frac >= 0 && frac < 1))
      throw new TricksError(`dataOptions.valSplit must be in [0, 1), got ${frac}`, 'for example --val-split 0.1');
    const split = stratifiedSplit(all.labels, frac, classNames.length);
    const pick = (idx: Int32Array): ClassTree => ({
      classNames,
      files: Array.from(idx, (i) => all.files[i]),
      labels: Int32Array.from(idx, (i) => all.labels[i]),
    });
    train = pick(split.train);
    val = pick(split.val);
  }
  if (train.classNames.length < 2)
    throw new TricksError(`folder: ${dir} has ${train.classNames.length} class sub-folder(s); a classifier needs at least 2`, howTo);
  if (train.files.length === 0) throw new TricksError(`folder: no images (${[...IMAGE_EXT].join(', ')}) under ${dir}`, howTo);

  const chosen = chooseSize(options.size, await probeSize(train.files));
  const size = chosen.size;
  const shape: [number, number, number] = [size[0], size[1], channels];
  const cropPct = mode === 'cover' ? (options.cropPct ?? (chosen.own ? 1 : 0.875)) : 1;
  const useCache = options.cache === true || ((options.cache ?? 'auto') === 'auto' && size[0] * size[1] <= 128 * 128);
  const cacheDir = options.cacheDir ?? join(tmpdir(), 'tricks-cache');
  const make = (side: 'train' | 'val', t: ClassTree) => {
    const crop = side === 'val' ? cropPct : 1;
    return new FolderDataset(`folder-${side}`, t.files, t.labels, t.classNames, shape, {
      mode,
      failOn,
      strict: options.strict === true,
      warn,
      cropPct: crop,
      decodeWorkers: options.decodeWorkers,
      cachePath: useCache ? cachePathFor(dir, t, shape, mode, cacheDir, side, crop) : undefined,
    });
  };
  const box = cropBox(size, cropPct);
  const square = size[0] === size[1];
  const side = (h: number, w: number) => (square ? `shorter side ${h}` : `cover ${h}x${w}`);
  const policy =
    mode !== 'cover'
      ? `resize ${mode}`
      : `train: ${side(size[0], size[1])}, centre crop; ` +
        (cropPct < 1
          ? `val: ${side(box.height, box.width)}, centre crop ${square ? size[0] : `${size[0]}x${size[1]}`} (cropPct ${cropPct})`
          : 'val: the same');
  return {
    train: make('train', train),
    val: make('val', val),
    source:
      `folder:${dir} (${hasSplit ? 'train/, val/' : `valSplit ${options.valSplit ?? 0.1}`}); ` +
      `images ${size[0]}x${size[1]}, ${chosen.why}; ${policy}`,
  };
}
