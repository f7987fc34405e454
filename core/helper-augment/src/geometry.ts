import * as tf from '@tensorflow/tfjs-core';

/**
 * Geometric ops on a whole NHWC batch, one parameter set per image. Source coordinates are computed on the
 * host with torchvision's conventions and sampled with tf.gather, so the result does not depend on the
 * backend's image kernels (tfjs-backend-cpu's Transform kernel only writes the first image of a batch).
 *
 * resizedCrop follows F.resized_crop on tensors (bilinear, align_corners=False, no antialias: torchvision's
 * tensor default); affine and rotate follow F.affine / F.rotate (grid_sample, zero fill, nearest or bilinear).
 */

/** A crop box in pixels of the input image. */
export interface Box {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** Python's round(): half to even, as torchvision's parameter code uses it. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Gathers, for each image b, the rows (axis 1) or columns (axis 2) idx[b, :]. Written with a flat gather:
 * tfjs-backend-wasm 4.22's GatherV2 with batchDims = 1 returns wrong rows along axis 1 (checked here).
 */
export function gatherPerImage(x: tf.Tensor4D, idx: Int32Array, k: number, axis: 1 | 2): tf.Tensor4D {
  return tf.tidy(() => {
    const t = axis === 2 ? tf.transpose(x, [0, 2, 1, 3]) : x;
    const [b, n, m, c] = t.shape;
    const global = new Int32Array(b * k);
    for (let i = 0; i < b; i++) for (let j = 0; j < k; j++) global[i * k + j] = i * n + idx[i * k + j];
    const g = tf.reshape(tf.gather(tf.reshape(t, [b * n, m * c]), tf.tensor1d(global, 'int32')), [b, k, m, c]) as tf.Tensor4D;
    return axis === 2 ? (tf.transpose(g, [0, 2, 1, 3]) as tf.Tensor4D) : g;
  });
}

/** torch upsample_bilinear2d (align_corners=False) source taps of `out` samples over `len` input pixels starting at `start`. */
export function bilinearTaps(start: number, len: number, out: number): { i0: Int32Array; i1: Int32Array; w1: Float32Array } {
  const i0 = new Int32Array(out),
    i1 = new Int32Array(out),
    w1 = new Float32Array(out);
  const scale = Math.fround(len / out);
  for (let d = 0; d < out; d++) {
    let src = Math.fround(Math.fround(scale * (d + 0.5)) - 0.5);
    if (src < 0) src = 0;
    const a = Math.floor(src);
    i0[d] = start + a;
    i1[d] = start + (a < len - 1 ? a + 1 : a);
    w1[d] = src - a;
  }
  return { i0, i1, w1 };
}

/**
 * Crops each image to its box and resizes it to `size` (bilinear), optionally flipping it horizontally
 * afterwards: F.hflip(F.resized_crop(img, top, left, height, width, size)). Boxes must lie inside the image.
 */
export function resizedCrop(x: tf.Tensor4D, boxes: Box[], size: [number, number], flips?: ArrayLike<boolean>): tf.Tensor4D {
  const [b, h, w] = x.shape;
  if (boxes.length !== b) throw new Error(`resizedCrop: ${boxes.length} boxes for a batch of ${b}`);
  const [oh, ow] = size;
  const r0 = new Int32Array(b * oh),
    r1 = new Int32Array(b * oh),
    rw = new Float32Array(b * oh);
  const c0 = new Int32Array(b * ow),
    c1 = new Int32Array(b * ow),
    cw = new Float32Array(b * ow);
  for (let n = 0; n < b; n++) {
    const box = boxes[n];
    if (box.top < 0 || box.left < 0 || box.top + box.height > h || box.left + box.width > w || box.height < 1 || box.width < 1) {
      throw new Error(`resizedCrop: box ${JSON.stringify(box)} is not inside the ${h}x${w} image`);
    }
    const rows = bilinearTaps(box.top, box.height, oh);
    r0.set(rows.i0, n * oh);
    r1.set(rows.i1, n * oh);
    rw.set(rows.w1, n * oh);
    const cols = bilinearTaps(box.left, box.width, ow);
    if (flips?.[n]) {
      cols.i0.reverse();
      cols.i1.reverse();
      cols.w1.reverse();
    }
    c0.set(cols.i0, n * ow);
    c1.set(cols.i1, n * ow);
    cw.set(cols.w1, n * ow);
  }
  return tf.tidy(() => {
    const lerp = (a: tf.Tensor, c: tf.Tensor, t: tf.Tensor) => tf.add(a, tf.mul(tf.sub(c, a), t));
    const rt = tf.tensor4d(rw, [b, oh, 1, 1]);
    const rowsOut = lerp(gatherPerImage(x, r0, oh, 1), gatherPerImage(x, r1, oh, 1), rt) as tf.Tensor4D;
    const ct = tf.tensor4d(cw, [b, 1, ow, 1]);
    return lerp(gatherPerImage(rowsOut, c0, ow, 2), gatherPerImage(rowsOut, c1, ow, 2), ct) as tf.Tensor4D;
  });
}

/**
 * Zero-pads each image by `padding` and takes an h x w crop at (top, left) of the padded image, flipping it
 * when asked: torchvision's RandomCrop(size, padding) + RandomHorizontalFlip with given parameters.
 */
export function padCrop(
  x: tf.Tensor4D,
  padding: number,
  offsets: { top: number; left: number }[],
  flips?: ArrayLike<boolean>,
): tf.Tensor4D {
  const [b, h, w] = x.shape;
  const rows = new Int32Array(b * h),
    cols = new Int32Array(b * w);
  for (let n = 0; n < b; n++) {
    const { top, left } = offsets[n];
    if (top < 0 || left < 0 || top > 2 * padding || left > 2 * padding)
      throw new Error(`padCrop: offset (${top}, ${left}) is outside 0..${2 * padding}`);
    for (let y = 0; y < h; y++) rows[n * h + y] = top + y;
    for (let c = 0; c < w; c++) cols[n * w + c] = left + (flips?.[n] ? w - 1 - c : c);
  }
  return tf.tidy(() => {
    const p =
      padding > 0
        ? tf.pad(x, [
            [0, 0],
            [padding, padding],
            [padding, padding],
            [0, 0],
          ])
        : x;
    const r = gatherPerImage(p as tf.Tensor4D, rows, h, 1);
    return gatherPerImage(r, cols, w, 2);
  });
}

/** Horizontal flip of the images whose flag is set. */
export function flipSome(x: tf.Tensor4D, flips: ArrayLike<boolean>): tf.Tensor4D {
  const [b, , w] = x.shape;
  let any = false;
  const cols = new Int32Array(b * w);
  for (let n = 0; n < b; n++) {
    any ||= !!flips[n];
    for (let c = 0; c < w; c++) cols[n * w + c] = flips[n] ? w - 1 - c : c;
  }
  if (!any) return tf.clone(x);
  return gatherPerImage(x, cols, w, 2);
}

/** torchvision's _get_inverse_affine_matrix: output-to-input matrix in coordinates centred on `center`. */
export function inverseAffineMatrix(
  center: [number, number],
  angle: number,
  translate: [number, number],
  scale: number,
  shear: [number, number],
): number[] {
  const rot = (angle * Math.PI) / 180;
  const sx = (shear[0] * Math.PI) / 180;
  const sy = (shear[1] * Math.PI) / 180;
  const [cx, cy] = center;
  const [tx, ty] = translate;
  const a = Math.cos(rot - sy) / Math.cos(sy);
  const bb = (-Math.cos(rot - sy) * Math.tan(sx)) / Math.cos(sy) - Math.sin(rot);
  const c = Math.sin(rot - sy) / Math.cos(sy);
  const d = (-Math.sin(rot - sy) * Math.tan(sx)) / Math.cos(sy) + Math.cos(rot);
  const m = [d, -bb, 0, -c, a, 0].map((v) => v / scale);
  m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
  m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
  m[2] += cx;
  m[5] += cy;
  return m;
}

export interface AffineParams {
  /** Degrees, as F.affine's angle (clockwise on screen; F.rotate(a) is F.affine(-a)). */
  angle: number;
  translate: [number, number];
  scale: number;
  shear: [number, number];
  /** Centre in pixels of the image (torchvision's `center` argument); default the image centre. */
  center?: [number, number];
}

/** The 2x3 matrix F.affine builds for these parameters on an h x w image. */
export function affineMatrix(p: AffineParams, h: number, w: number): number[] {
  const c: [number, number] = p.center ? [p.center[0] - w * 0.5, p.center[1] - h * 0.5] : [0, 0];
  return inverseAffineMatrix(c, p.angle, p.translate, p.scale, p.shear);
}

/** The matrix F.rotate(angle) uses (no expand, centre of the image). */
export function rotateMatrix(angle: number): number[] {
  return inverseAffineMatrix([0, 0], -angle, [0, 0], 1, [0, 0]);
}

function nearbyint(v: number): number {
  return roundHalfEven(v);
}

/**
 * Applies one output-to-input 2x3 matrix per image (torchvision's centred convention, as returned by
 * affineMatrix/rotateMatrix) with zero fill: torchvision's F_t.affine (grid_sample, align_corners=False),
 * including its fill mask, so bilinear borders match too. A null matrix leaves the image as is.
 */
export function affineBatch(x: tf.Tensor4D, matrices: (number[] | null)[], interpolation: 'nearest' | 'bilinear' = 'nearest'): tf.Tensor4D {
  const [b, h, w, ch] = x.shape;
  const hw = h * w;
  const zero = b * hw; // index of an appended zero pixel
  const taps = interpolation === 'nearest' ? 1 : 4;
  const idx = new Int32Array(b * hw * taps);
  const wts = taps > 1 ? new Float32Array(b * hw * taps) : undefined;
  const f = Math.fround;
  for (let n = 0; n < b; n++) {
    const m = matrices[n] ?? [1, 0, 0, 0, 1, 0];
    // grid_sample math in float32 like torch: grid = base @ (theta^T / [w/2, h/2]); ix = ((g + 1) * w - 1) / 2
    const t = m.map(f);
    for (let y = 0; y < h; y++) {
      const yc = f(-h * 0.5 + 0.5 + y);
      for (let xx = 0; xx < w; xx++) {
        const xc = f(-w * 0.5 + 0.5 + xx);
        const gx = f(f(f(xc * f(t[0] / f(0.5 * w))) + f(yc * f(t[1] / f(0.5 * w)))) + f(t[2] / f(0.5 * w)));
        const gy = f(f(f(xc * f(t[3] / f(0.5 * h))) + f(yc * f(t[4] / f(0.5 * h)))) + f(t[5] / f(0.5 * h)));
        const ix = f(f(f(f(gx + 1) * w) - 1) / 2);
        const iy = f(f(f(f(gy + 1) * h) - 1) / 2);
        const o = (n * hw + y * w + xx) * taps;
        if (taps === 1) {
          const px = nearbyint(ix),
            py = nearbyint(iy);
          idx[o] = px >= 0 && px < w && py >= 0 && py < h ? n * hw + py * w + px : zero;
        } else {
          const x0 = Math.floor(ix),
            y0 = Math.floor(iy);
          const ax = ix - x0,
            ay = iy - y0;
          const corners: [number, number, number][] = [
            [x0, y0, (1 - ax) * (1 - ay)],
            [x0 + 1, y0, ax * (1 - ay)],
            [x0, y0 + 1, (1 - ax) * ay],
            [x0 + 1, y0 + 1, ax * ay],
          ];
          corners.forEach(([cx, cy, cwt], k) => {
            const inside = cx >= 0 && cx < w && cy >= 0 && cy < h;
            idx[o + k] = inside ? n * hw + cy * w + cx : zero;
            wts![o + k] = inside ? cwt : 0;
          });
        }
      }
    }
  }
  return tf.tidy(() => {
    const flat = tf.concat([tf.reshape(x, [b * hw, ch]), tf.zeros([1, ch])], 0);
    const g = tf.gather(flat, tf.tensor1d(idx, 'int32'));
    if (taps === 1) return tf.reshape(g, [b, h, w, ch]) as tf.Tensor4D;
    const wt = tf.tensor3d(wts!, [b * hw, taps, 1]);
    const sampled = tf.sum(tf.mul(tf.reshape(g, [b * hw, taps, ch]), wt), 1);
    // torchvision samples a ones channel alongside and multiplies by it (fill 0): borders fade twice
    const mask = tf.sum(wt, 1);
    return tf.reshape(tf.mul(sampled, mask), [b, h, w, ch]) as tf.Tensor4D;
  });
}

/**
 * Fast path of resizedCrop: one tf.image.cropAndResize call (a single fused kernel, on wasm too) after a
 * 1-pixel edge-replicating pad. Box coordinates are chosen so the sample points are torchvision's
 * half-pixel centres, and the pad makes samples past the image border equal the border pixel, as torch's
 * clamping does. It differs from resizedCrop only where an upscaled crop's outer half pixel reads the
 * neighbour just outside the crop (inside the image) instead of repeating the crop's edge: measured max
 * abs difference 0.093 on the fixtures (outer ring only; interior < 1e-5, core/helper-augment/test/augment-ops.test.ts).
 */
export function resizedCropFast(x: tf.Tensor4D, boxes: Box[], size: [number, number], flips?: ArrayLike<boolean>): tf.Tensor4D {
  const [b, h, w] = x.shape;
  const [oh, ow] = size;
  const hp = h + 2,
    wp = w + 2;
  const coords = new Float32Array(b * 4);
  for (let n = 0; n < b; n++) {
    const { top, left, height, width } = boxes[n];
    // first sample at top + 0.5 h/oh - 0.5 (padded: + 1), step h/oh
    const sy = height / oh,
      sx = width / ow;
    const y1 = top + 0.5 * sy - 0.5 + 1,
      y2 = y1 + sy * (oh - 1);
    let x1 = left + 0.5 * sx - 0.5 + 1,
      x2 = x1 + sx * (ow - 1);
    if (flips?.[n]) [x1, x2] = [x2, x1];
    coords.set([y1 / (hp - 1), x1 / (wp - 1), y2 / (hp - 1), x2 / (wp - 1)], n * 4);
  }
  return tf.tidy(() => {
    const padded = tf.mirrorPad(
      x,
      [
        [0, 0],
        [1, 1],
        [1, 1],
        [0, 0],
      ],
      'symmetric',
    );
    const ind = tf.tensor1d(
      Int32Array.from({ length: b }, (_, i) => i),
      'int32',
    );
    return tf.image.cropAndResize(padded, tf.tensor2d(coords, [b, 4]), ind, [oh, ow], 'bilinear', 0) as tf.Tensor4D;
  });
}

/**
 * Fast path of padCrop: one gather of the batch's pixels (plus an appended zero pixel for the padding), every index
 * computed on the host. Exact on every backend: a gather copies. (It was one tf.image.cropAndResize with integer
 * sample points; the box corners, integers divided by h - 1, come back a rounding error off, and the kernels then
 * lose a border row or column (cpu: the sample at -1e-7 is extrapolated as 0) or shift the whole crop (wasm: its
 * kernel copies the image unshifted when x2 - x1 rounds to exactly 1, e.g. offset (2, 3) of a 28-px image padded by 2).)
 */
export function padCropFast(
  x: tf.Tensor4D,
  padding: number,
  offsets: { top: number; left: number }[],
  flips?: ArrayLike<boolean>,
): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  if (offsets.length !== b) throw new Error(`padCropFast: ${offsets.length} offsets for a batch of ${b}`);
  const hw = h * w;
  const zero = b * hw; // index of the appended zero pixel
  const idx = new Int32Array(b * hw);
  for (let n = 0; n < b; n++) {
    const { top, left } = offsets[n];
    if (top < 0 || left < 0 || top > 2 * padding || left > 2 * padding)
      throw new Error(`padCropFast: offset (${top}, ${left}) is outside 0..${2 * padding}`);
    const flip = !!flips?.[n];
    for (let y = 0; y < h; y++) {
      const sy = y + top - padding;
      for (let xx = 0; xx < w; xx++) {
        const sx = (flip ? w - 1 - xx : xx) + left - padding;
        idx[n * hw + y * w + xx] = sy >= 0 && sy < h && sx >= 0 && sx < w ? n * hw + sy * w + sx : zero;
      }
    }
  }
  return tf.tidy(() => {
    const flat = tf.concat([tf.reshape(x, [b * hw, c]), tf.zeros([1, c], x.dtype)], 0);
    return tf.reshape(tf.gather(flat, tf.tensor1d(idx, 'int32')), [b, h, w, c]) as tf.Tensor4D;
  });
}
