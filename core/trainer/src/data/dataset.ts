/**
 * A dataset is a length, a shape, and items that are uint8 HWC images with integer labels.
 * Batches are gathered with getBatch so that in-memory, cached and streaming datasets share one path.
 */
export interface RawBatch {
  /** uint8 NHWC, rows in the order of the indices. */
  images: Uint8Array;
  labels: Int32Array;
  /** True when the dataset applied BatchOptions.crop to every row (crop-at-decode). */
  cropped?: boolean;
  /**
   * The rows as float32 NHWC, already mapped by BatchOptions.pixels (or / 255 without it), when the dataset made
   * them while decoding (crop-at-decode); `images` is then empty.
   */
  floats?: Float32Array;
}

/**
 * A crop in the pixels of an item's source image (e.g. the photo file, after EXIF orientation), resized to the
 * dataset's shape, then mirrored left-right when `flip` is set: F.hflip(F.resized_crop(src, box, shape)).
 */
export interface DecodeCrop {
  top: number;
  left: number;
  height: number;
  width: number;
  flip: boolean;
}

/** What the loader asks of getBatch, from the run's DecodePlan. */
export interface BatchOptions {
  /**
   * The crop of row k, given its source image's size (the substitute's, for an unreadable file). A dataset with
   * `decodeCrop` calls it once per row while it decodes and sets RawBatch.cropped; others ignore it.
   */
  crop?: (k: number, srcHeight: number, srcWidth: number) => DecodeCrop;
  /** With crop: the pixel map to float (v * scale[c] + offset[c] of the uint8 value) for RawBatch.floats. */
  pixels?: { scale: number[]; offset: number[] };
  /**
   * With crop: where RawBatch.floats may go (the loader's ring of batch buffers, SharedArrayBuffer-backed, so decode
   * workers write into it and no fresh 38 MB is faulted in per batch); at least rows x item size long.
   */
  into?: Float32Array;
}

/** A dataset's resize: stretch, cover then keep the centre cropPct (torchvision's Resize + CenterCrop), or fit inside and pad black. */
export type ResizePolicy = { policy: 'resize' | 'resize-shorter-crop' | 'resize-longer-pad'; cropPct?: number; interpolation: string };

export interface Dataset {
  readonly name: string;
  readonly length: number;
  /** [height, width, channels] of every item. */
  readonly shape: [number, number, number];
  readonly numClasses: number;
  readonly classNames?: string[];
  /** Label of every item, known without decoding images (used by samplers and splits). */
  readonly labels: Int32Array;
  /** True when getBatch honours BatchOptions.crop: it crops (and flips) each item from its source while decoding. */
  readonly decodeCrop?: boolean;
  /** How a source image was brought to `shape` (written into the model's metadata for deployment); absent: items come at that size. */
  readonly resize?: ResizePolicy;
  getBatch(indices: ArrayLike<number>, options?: BatchOptions): Promise<RawBatch>;
}

/** What a DatasetFactory returns: a training set and a validation set. */
export interface DataSplit {
  train: Dataset;
  val: Dataset;
  /** Where the data came from, for logs and reports. */
  source: string;
}

/** Whole dataset in one uint8 buffer. */
export class InMemoryDataset implements Dataset {
  readonly length: number;
  private readonly itemSize: number;

  constructor(
    readonly name: string,
    readonly images: Uint8Array,
    readonly labels: Int32Array,
    readonly shape: [number, number, number],
    readonly numClasses: number,
    readonly classNames?: string[],
  ) {
    this.itemSize = shape[0] * shape[1] * shape[2];
    this.length = labels.length;
    if (images.length !== this.length * this.itemSize) {
      throw new Error(`${name}: ${images.length} image bytes do not make ${this.length} items of ${shape.join('x')}`);
    }
  }

  getBatchSync(indices: ArrayLike<number>): RawBatch {
    const n = indices.length;
    const size = this.itemSize;
    const images = new Uint8Array(n * size);
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const j = indices[i];
      images.set(this.images.subarray(j * size, (j + 1) * size), i * size);
      labels[i] = this.labels[j];
    }
    return { images, labels };
  }

  async getBatch(indices: ArrayLike<number>): Promise<RawBatch> {
    return this.getBatchSync(indices);
  }

  /** A view of some items (the split keeps one buffer per side, so batches stay contiguous copies). */
  subset(indices: ArrayLike<number>, name = this.name): InMemoryDataset {
    const { images, labels } = this.getBatchSync(indices);
    return new InMemoryDataset(name, images, labels, this.shape, this.numClasses, this.classNames);
  }
}

/** A subset of any dataset by index list. */
export class SubsetDataset implements Dataset {
  readonly labels: Int32Array;
  constructor(
    readonly base: Dataset,
    readonly indices: Int32Array,
    readonly name = base.name,
  ) {
    this.labels = new Int32Array(indices.length);
    for (let i = 0; i < indices.length; i++) this.labels[i] = base.labels[indices[i]];
  }
  get length() {
    return this.indices.length;
  }
  get shape() {
    return this.base.shape;
  }
  get numClasses() {
    return this.base.numClasses;
  }
  get classNames() {
    return this.base.classNames;
  }
  get decodeCrop() {
    return this.base.decodeCrop;
  }
  getBatch(indices: ArrayLike<number>, options?: BatchOptions): Promise<RawBatch> {
    return this.base.getBatch(
      Array.from(indices, (i) => this.indices[i]),
      options,
    );
  }
}

/** Stratified split with a fixed seed, so the validation set does not move with the training seed. */
export function stratifiedSplit(
  labels: Int32Array,
  valFraction: number,
  numClasses: number,
  seed = 0x5eed,
): { train: Int32Array; val: Int32Array } {
  // A tiny local LCG keeps this independent of the run's Rng stream.
  let s = seed >>> 0;
  const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  labels.forEach((l, i) => byClass[l].push(i));
  const train: number[] = [],
    val: number[] = [];
  for (const idx of byClass) {
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    const nVal = Math.round(idx.length * valFraction);
    val.push(...idx.slice(0, nVal));
    train.push(...idx.slice(nVal));
  }
  return { train: Int32Array.from(train.sort((a, b) => a - b)), val: Int32Array.from(val.sort((a, b) => a - b)) };
}
