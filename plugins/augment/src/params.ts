import type { Rng } from '@tricks/core';
import { roundHalfEven, type AffineParams, type Box } from '@tricks/helper-augment';

/**
 * The augment plugin's random parameters, drawn with the run's seeded Rng by the same procedures as torchvision's
 * get_params (the distributions match; the streams do not, since the generators differ). RandomResizedCrop's,
 * which the benchmarks share, is helper-augment's randomResizedCropBox.
 */

/** RandomErasing.get_params: a box of area fraction in `scale` and aspect in `ratio`, or null when 10 tries fail. */
export function randomErasingBox(
  rng: Rng,
  height: number,
  width: number,
  scale: [number, number] = [0.02, 0.33],
  ratio: [number, number] = [0.3, 3.3],
): Box | null {
  const area = height * width;
  const logR = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let t = 0; t < 10; t++) {
    const eraseArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logR[0], logR[1]));
    const h = roundHalfEven(Math.sqrt(eraseArea * aspect));
    const w = roundHalfEven(Math.sqrt(eraseArea / aspect));
    if (!(h < height && w < width)) continue;
    return { top: rng.int(height - h + 1), left: rng.int(width - w + 1), height: h, width: w };
  }
  return null;
}

/** Cutout (DeVries and Taylor 2017): a size x size square centred uniformly in the image, clipped at the borders. */
export function cutoutBox(rng: Rng, height: number, width: number, size: number): Box {
  const cy = rng.int(height),
    cx = rng.int(width);
  const y0 = Math.max(0, cy - Math.floor(size / 2)),
    y1 = Math.min(height, cy + Math.ceil(size / 2));
  const x0 = Math.max(0, cx - Math.floor(size / 2)),
    x1 = Math.min(width, cx + Math.ceil(size / 2));
  return { top: y0, left: x0, height: y1 - y0, width: x1 - x0 };
}

/** RandomAffine.get_params. degrees, translate (fractions of the size), scale range, shear ranges in degrees. */
export function randomAffineParams(
  rng: Rng,
  height: number,
  width: number,
  o: { degrees: [number, number]; translate?: [number, number]; scale?: [number, number]; shear?: [number, number, number, number] },
): AffineParams {
  const angle = rng.uniform(o.degrees[0], o.degrees[1]);
  let translate: [number, number] = [0, 0];
  if (o.translate) {
    const maxDx = o.translate[0] * width,
      maxDy = o.translate[1] * height;
    translate = [roundHalfEven(rng.uniform(-maxDx, maxDx)), roundHalfEven(rng.uniform(-maxDy, maxDy))];
  }
  const scale = o.scale ? rng.uniform(o.scale[0], o.scale[1]) : 1;
  const shear: [number, number] = o.shear ? [rng.uniform(o.shear[0], o.shear[1]), rng.uniform(o.shear[2], o.shear[3])] : [0, 0];
  return { angle, translate, scale, shear };
}
