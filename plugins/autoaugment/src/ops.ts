import * as tf from '@tensorflow/tfjs-core';
import {
  adjustBrightness,
  adjustContrast,
  adjustSaturation,
  adjustSharpness,
  affineBatch,
  affineMatrix,
  autocontrast,
  equalize,
  invert,
  posterize,
  rotateMatrix,
  solarize,
} from '@tricks/helper-augment';

/** The operations of torchvision's AutoAugment / RandAugment (_apply_op), with its magnitude conventions. */
export const AA_OPS = [
  'Identity',
  'ShearX',
  'ShearY',
  'TranslateX',
  'TranslateY',
  'Rotate',
  'Brightness',
  'Color',
  'Contrast',
  'Sharpness',
  'Posterize',
  'Solarize',
  'AutoContrast',
  'Equalize',
  'Invert',
] as const;
export type AAOpName = (typeof AA_OPS)[number];

/** One op for one image: magnitude as torchvision passes it to _apply_op (shear: tan factor; translate: pixels; rotate: degrees; colour: factor - 1; posterize: bits; solarize: threshold on 0..255). */
export interface AAOp {
  name: AAOpName;
  magnitude: number;
}

const GEOMETRIC = new Set<AAOpName>(['ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate']);

/** The F.affine matrix of a geometric op on an h x w image. */
export function geometricMatrix(op: AAOp, h: number, w: number): number[] {
  const m = op.magnitude;
  const deg = (v: number) => (Math.atan(v) * 180) / Math.PI;
  switch (op.name) {
    case 'ShearX':
      return affineMatrix({ angle: 0, translate: [0, 0], scale: 1, shear: [deg(m), 0], center: [0, 0] }, h, w);
    case 'ShearY':
      return affineMatrix({ angle: 0, translate: [0, 0], scale: 1, shear: [0, deg(m)], center: [0, 0] }, h, w);
    case 'TranslateX':
      return affineMatrix({ angle: 0, translate: [Math.trunc(m), 0], scale: 1, shear: [0, 0] }, h, w);
    case 'TranslateY':
      return affineMatrix({ angle: 0, translate: [0, Math.trunc(m)], scale: 1, shear: [0, 0] }, h, w);
    case 'Rotate':
      return rotateMatrix(m);
    default:
      throw new Error(`${op.name} is not a geometric op`);
  }
}

function select(mask: boolean[], a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor4D {
  const m = tf.tensor4d(
    Float32Array.from(mask, (v) => (v ? 1 : 0)),
    [mask.length, 1, 1, 1],
  );
  return tf.add(tf.mul(a, m), tf.mul(b, tf.sub(1, m))) as tf.Tensor4D;
}

/**
 * Applies at most one op per image (null: leave it), all images at once: one affine gather for every
 * geometric op of the batch, and one batched call per colour op present.
 */
export function applyOps(x: tf.Tensor4D, ops: (AAOp | null)[], interpolation: 'nearest' | 'bilinear' = 'nearest'): tf.Tensor4D {
  const [b, h, w] = x.shape;
  if (ops.length !== b) throw new Error(`applyOps: ${ops.length} ops for a batch of ${b}`);
  return tf.tidy(() => {
    let y = x;
    const present = new Set(ops.filter((o): o is AAOp => !!o).map((o) => o.name));
    if ([...present].some((n) => GEOMETRIC.has(n))) {
      const mats = ops.map((o) => (o && GEOMETRIC.has(o.name) ? geometricMatrix(o, h, w) : null));
      y = affineBatch(y, mats, interpolation);
    }
    const factor = (name: AAOpName, identity: number, f: (o: AAOp) => number) => ops.map((o) => (o?.name === name ? f(o) : identity));
    const mask = (name: AAOpName) => ops.map((o) => o?.name === name);
    for (const name of present) {
      switch (name) {
        case 'Brightness':
          y = adjustBrightness(
            y,
            factor(name, 1, (o) => 1 + o.magnitude),
          );
          break;
        case 'Color':
          y = adjustSaturation(
            y,
            factor(name, 1, (o) => 1 + o.magnitude),
          );
          break;
        case 'Contrast':
          y = adjustContrast(
            y,
            factor(name, 1, (o) => 1 + o.magnitude),
          );
          break;
        case 'Sharpness':
          y = adjustSharpness(
            y,
            factor(name, 1, (o) => 1 + o.magnitude),
          );
          break;
        case 'Solarize':
          y = solarize(
            y,
            factor(name, 2, (o) => o.magnitude / 255),
          );
          break;
        case 'Posterize':
          y = select(
            mask(name),
            posterize(
              y,
              factor(name, 8, (o) => Math.trunc(o.magnitude)),
            ),
            y,
          );
          break;
        case 'AutoContrast':
          y = select(mask(name), autocontrast(y), y);
          break;
        case 'Invert':
          y = select(mask(name), invert(y), y);
          break;
        case 'Equalize':
          y = equalize(y, mask(name));
          break;
        default:
          break;
      }
    }
    return y === x ? tf.clone(x) : y;
  });
}
