import { IMAGENET_MEAN, IMAGENET_STD } from '@tricks/helper-augment';

/** The augment plugin's options and the pipeline they resolve to for a dataset's image size. */
export interface AugmentOptions {
  /** auto: 'cifar' for images of at most 64 px a side, else 'imagenet'; none: only what is set below. */
  preset: 'auto' | 'cifar' | 'imagenet' | 'none';
  /** RandomResizedCrop back to the input size; true takes torchvision's defaults. */
  randomResizedCrop: boolean | { scale?: [number, number]; ratio?: [number, number] } | null;
  /** RandomCrop(size, padding): zero-pad then crop at a random offset; a number is the padding. */
  padCrop: number | boolean | null;
  /** Probability of a horizontal flip. */
  flip: number | null;
  /** RandomRotation(±degrees), nearest, zero fill. */
  rotate: number;
  /** RandomAffine. */
  affine: { degrees?: number; translate?: [number, number]; scale?: [number, number]; shear?: number } | null;
  /** ColorJitter factors and the probability of applying it to an image. */
  colorJitter: { brightness?: number; contrast?: number; saturation?: number; hue?: number; prob?: number } | null;
  /** Normalize (per channel); 'imagenet' or true: ImageNet mean/std; false: none. */
  normalize: boolean | 'imagenet' | { mean: number[]; std: number[] };
  /** RandomErasing (after normalize). */
  erasing: { prob?: number; scale?: [number, number]; ratio?: [number, number]; value?: number } | null;
  /** Cutout: a square of `size` pixels per image with probability prob (after normalize). */
  cutout: { size: number; prob?: number } | null;
  /** RandomResizedCrop exactly as torchvision (gathers) instead of the one-kernel fast path (differs on the crop's outer ring). */
  exact: boolean;
  /**
   * RandomResizedCrop + flip while the images decode, when the dataset can (the folder loader: sharp on the thread
   * pool, from the source image), instead of on the float batch. Not with `exact`.
   */
  decodeCrop: boolean;
  /** Fold Normalize into the uint8 -> float conversion when nothing before it needs pixels in [0, 1]. */
  foldNormalize: boolean;
}

/** The pipeline an options object resolves to for an h x w image. */
export interface Pipeline {
  crop: { kind: 'rrc'; scale: [number, number]; ratio: [number, number] } | { kind: 'pad'; padding: number } | null;
  flip: number;
  rotate: number;
  affine: AugmentOptions['affine'];
  colorJitter: AugmentOptions['colorJitter'];
  normalize: { mean: number[]; std: number[] } | null;
  erasing: AugmentOptions['erasing'];
  cutout: AugmentOptions['cutout'];
  exact: boolean;
}

export function resolvePipeline(o: AugmentOptions, h: number, w: number, channels: number): Pipeline {
  const preset = o.preset === 'auto' ? (Math.max(h, w) <= 64 ? 'cifar' : 'imagenet') : o.preset;
  let crop: Pipeline['crop'] = null;
  if (o.randomResizedCrop) {
    const r = o.randomResizedCrop === true ? {} : o.randomResizedCrop;
    crop = { kind: 'rrc', scale: r.scale ?? [0.08, 1], ratio: r.ratio ?? [3 / 4, 4 / 3] };
  } else if (o.padCrop) {
    crop = { kind: 'pad', padding: o.padCrop === true ? 4 : o.padCrop };
  } else if (o.randomResizedCrop === null && o.padCrop === null) {
    if (preset === 'cifar') crop = { kind: 'pad', padding: 4 };
    if (preset === 'imagenet') crop = { kind: 'rrc', scale: [0.08, 1], ratio: [3 / 4, 4 / 3] };
  }
  const flip = o.flip ?? (preset === 'none' ? 0 : 0.5);
  let norm: Pipeline['normalize'] = null;
  if (o.normalize === true || o.normalize === 'imagenet') {
    norm = channels === 1 ? { mean: [0.449], std: [0.226] } : { mean: IMAGENET_MEAN, std: IMAGENET_STD };
  } else if (o.normalize) norm = o.normalize;
  return {
    crop,
    flip,
    rotate: o.rotate,
    affine: o.affine,
    colorJitter: o.colorJitter,
    normalize: norm,
    erasing: o.erasing,
    cutout: o.cutout,
    exact: o.exact,
  };
}
