import * as tf from '@tensorflow/tfjs-core';

/**
 * Colour ops on a float NHWC batch in [0, 1], one factor per image (or one for all), following
 * torchvision.transforms.functional on float tensors: every op is a blend with a degenerate image,
 * clamped to [0, 1]. Single-channel images: saturation and hue leave them as they are, like torchvision.
 */
export type Factors = number | ArrayLike<number>;

/** Per-image factors as a [B, 1, 1, 1] tensor. */
export function perImage(f: Factors, b: number): tf.Tensor4D {
  if (typeof f === 'number') return tf.fill([b, 1, 1, 1], f) as tf.Tensor4D;
  if (f.length !== b) throw new Error(`${f.length} factors for a batch of ${b}`);
  return tf.tensor4d(Float32Array.from(f), [b, 1, 1, 1]);
}

/** torchvision's _blend: clamp(f * a + (1 - f) * b, 0, 1). */
export function blend(a: tf.Tensor4D, degenerate: tf.Tensor, f: tf.Tensor): tf.Tensor4D {
  return tf.tidy(() => tf.clipByValue(tf.add(tf.mul(f, a), tf.mul(tf.sub(1, f), degenerate)), 0, 1) as tf.Tensor4D);
}

/** rgb_to_grayscale: 0.2989 R + 0.587 G + 0.114 B, shape [B, H, W, 1]. */
export function grayscale(x: tf.Tensor4D): tf.Tensor4D {
  if (x.shape[3] === 1) return tf.clone(x);
  return tf.tidy(() => tf.sum(tf.mul(x, tf.tensor1d([0.2989, 0.587, 0.114])), 3, true) as tf.Tensor4D);
}

export function adjustBrightness(x: tf.Tensor4D, f: Factors): tf.Tensor4D {
  return tf.tidy(() => blend(x, tf.scalar(0), perImage(f, x.shape[0])));
}

export function adjustContrast(x: tf.Tensor4D, f: Factors): tf.Tensor4D {
  return tf.tidy(() => {
    const mean = tf.mean(grayscale(x), [1, 2, 3], true);
    return blend(x, mean, perImage(f, x.shape[0]));
  });
}

export function adjustSaturation(x: tf.Tensor4D, f: Factors): tf.Tensor4D {
  if (x.shape[3] === 1) return tf.clone(x);
  return tf.tidy(() => blend(x, grayscale(x), perImage(f, x.shape[0])));
}

/** torchvision's _rgb2hsv on the last axis: returns h, s, v, each [B, H, W, 1]. */
export function rgbToHsv(x: tf.Tensor4D): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const [r, g, b] = tf.split(x, 3, 3);
  const maxc = tf.max(x, 3, true);
  const minc = tf.min(x, 3, true);
  const eqc = tf.equal(maxc, minc);
  const cr = tf.sub(maxc, minc);
  const ones = tf.onesLike(maxc);
  const s = tf.div(cr, tf.where(eqc, ones, maxc));
  const crDiv = tf.where(eqc, ones, cr);
  const rc = tf.div(tf.sub(maxc, r), crDiv);
  const gc = tf.div(tf.sub(maxc, g), crDiv);
  const bc = tf.div(tf.sub(maxc, b), crDiv);
  const isR = tf.equal(maxc, r);
  const isG = tf.logicalAnd(tf.equal(maxc, g), tf.logicalNot(isR));
  const isB = tf.logicalAnd(tf.logicalNot(tf.equal(maxc, g)), tf.logicalNot(isR));
  const hr = tf.mul(tf.cast(isR, 'float32'), tf.sub(bc, gc));
  const hg = tf.mul(tf.cast(isG, 'float32'), tf.add(tf.sub(rc, bc), 2));
  const hb = tf.mul(tf.cast(isB, 'float32'), tf.add(tf.sub(gc, rc), 4));
  const h = tf.mod(tf.add(tf.div(tf.add(tf.add(hr, hg), hb), 6), 1), 1);
  return [h, s, maxc];
}

/** torchvision's _hsv2rgb. */
export function hsvToRgb(h: tf.Tensor, s: tf.Tensor, v: tf.Tensor): tf.Tensor4D {
  const h6 = tf.mul(h, 6);
  const i = tf.floor(h6);
  const f = tf.sub(h6, i);
  const p = tf.clipByValue(tf.mul(v, tf.sub(1, s)), 0, 1);
  const q = tf.clipByValue(tf.mul(v, tf.sub(1, tf.mul(s, f))), 0, 1);
  const t = tf.clipByValue(tf.mul(v, tf.sub(1, tf.mul(s, tf.sub(1, f)))), 0, 1);
  const sector = tf.mod(i, 6);
  const table: tf.Tensor[][] = [
    [v, q, p, p, t, v],
    [t, v, v, q, p, p],
    [p, p, t, v, v, q],
  ];
  const masks = [0, 1, 2, 3, 4, 5].map((k) => tf.cast(tf.equal(sector, k), 'float32'));
  const chans = table.map((row) => tf.addN(row.map((val, k) => tf.mul(masks[k], val))));
  return tf.concat(chans, 3) as tf.Tensor4D;
}

/** Hue shift in HSV: h = (h + f) mod 1, f in [-0.5, 0.5]. */
export function adjustHue(x: tf.Tensor4D, f: Factors): tf.Tensor4D {
  if (x.shape[3] === 1) return tf.clone(x);
  return tf.tidy(() => {
    const [h, s, v] = rgbToHsv(x);
    const h2 = tf.mod(tf.add(h, perImage(f, x.shape[0])), 1);
    return hsvToRgb(h2, s, v);
  });
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];

/** (x - mean) / std per channel. */
export function normalize(x: tf.Tensor4D, mean: number[] = IMAGENET_MEAN, std: number[] = IMAGENET_STD): tf.Tensor4D {
  const c = x.shape[3];
  const m = mean.length === c ? mean : mean.length >= 1 && c === 1 ? [mean.reduce((a, b) => a + b) / mean.length] : mean;
  const s = std.length === c ? std : std.length >= 1 && c === 1 ? [std.reduce((a, b) => a + b) / std.length] : std;
  if (m.length !== c || s.length !== c) throw new Error(`normalize: ${mean.length} means / ${std.length} stds for ${c} channels`);
  return tf.tidy(() => tf.div(tf.sub(x, tf.tensor1d(m)), tf.tensor1d(s)) as tf.Tensor4D);
}

/** F.adjust_sharpness: blend with a 3x3 smoothed image whose border pixels are the original ones. */
export function adjustSharpness(x: tf.Tensor4D, f: Factors): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  if (h <= 2 || w <= 2) return tf.clone(x);
  return tf.tidy(() => {
    const k = tf.div(tf.tensor2d([1, 1, 1, 1, 5, 1, 1, 1, 1], [3, 3]), 13);
    const kernel = tf.tile(tf.reshape(k, [3, 3, 1, 1]), [1, 1, c, 1]) as tf.Tensor4D;
    const blurred = tf.depthwiseConv2d(x, kernel, 1, 'valid');
    const padded = tf.pad(blurred, [
      [0, 0],
      [1, 1],
      [1, 1],
      [0, 0],
    ]);
    const interior = tf.pad(tf.ones([1, h - 2, w - 2, 1]), [
      [0, 0],
      [1, 1],
      [1, 1],
      [0, 0],
    ]);
    const degenerate = tf.add(tf.mul(padded, interior), tf.mul(x, tf.sub(1, interior)));
    return blend(x, degenerate, perImage(f, b));
  });
}

/** F.autocontrast: stretch each channel of each image to [0, 1]; flat channels stay. */
export function autocontrast(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const lo = tf.min(x, [1, 2], true);
    const hi = tf.max(x, [1, 2], true);
    const range = tf.sub(hi, lo);
    const flat = tf.lessEqual(range, 0);
    const scale = tf.where(flat, tf.onesLike(range), tf.div(1, tf.where(flat, tf.onesLike(range), range)));
    const lo2 = tf.where(flat, tf.zerosLike(lo), lo);
    return tf.clipByValue(tf.mul(tf.sub(x, lo2), scale), 0, 1) as tf.Tensor4D;
  });
}

export function invert(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.sub(1, x) as tf.Tensor4D);
}

/** F.solarize: invert the pixels at or above the threshold (threshold on the [0, 1] scale, per image). */
export function solarize(x: tf.Tensor4D, threshold: Factors): tf.Tensor4D {
  return tf.tidy(() => tf.where(tf.greaterEqual(x, perImage(threshold, x.shape[0])), tf.sub(1, x), x) as tf.Tensor4D);
}

/** F.posterize on the uint8 scale: keep the top `bits` bits of round(255 x), per image. */
export function posterize(x: tf.Tensor4D, bits: Factors): tf.Tensor4D {
  return tf.tidy(() => {
    const step = tf.pow(2, tf.sub(8, perImage(bits, x.shape[0])));
    const q = tf.round(tf.mul(x, 255));
    return tf.div(tf.mul(tf.floor(tf.div(q, step)), step), 255) as tf.Tensor4D;
  });
}

/** torchvision's _scale_channel on one uint8 channel given as values 0..255 (strided view). */
function equalizeChannel(v: Float32Array, offset: number, stride: number, count: number): void {
  const hist = new Float64Array(256);
  for (let i = 0; i < count; i++) hist[Math.min(255, Math.max(0, Math.round(v[offset + i * stride] * 255)))]++;
  let last = -1;
  for (let i = 255; i >= 0; i--)
    if (hist[i] !== 0) {
      last = i;
      break;
    }
  let nonzeroSum = 0;
  for (let i = 0; i < 256; i++) if (hist[i] !== 0 && i !== last) nonzeroSum += hist[i];
  const step = Math.floor(nonzeroSum / 255);
  if (step === 0) return;
  const lut = new Float64Array(256);
  let cum = 0;
  for (let i = 0; i < 256; i++) {
    // lut = (cumsum + step // 2) // step, shifted right by one and clamped
    lut[i] = i === 0 ? 0 : Math.min(255, Math.max(0, Math.floor((cum + Math.floor(step / 2)) / step)));
    cum += hist[i];
  }
  for (let i = 0; i < count; i++) {
    const p = offset + i * stride;
    v[p] = lut[Math.min(255, Math.max(0, Math.round(v[p] * 255)))] / 255;
  }
}

/** F.equalize (histogram equalization per channel on the uint8 scale), for the images whose flag is set. Runs on the host. */
export function equalize(x: tf.Tensor4D, which?: ArrayLike<boolean>): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const data = x.dataSync().slice() as Float32Array;
  const size = h * w * c;
  for (let n = 0; n < b; n++) {
    if (which && !which[n]) continue;
    for (let ch = 0; ch < c; ch++) equalizeChannel(data, n * size + ch, c, h * w);
  }
  return tf.tensor4d(data, x.shape);
}
