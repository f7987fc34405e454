/**
 * Resized crop of one uint8 HWC image straight into float32, with a per-channel pixel map folded in:
 * out = map(F.hflip?(F.resized_crop(src, box, size))) where map(v) = v * scale[c] + offset[c] on the uint8 scale
 * (scale 1/255, offset 0 gives [0, 1]). The interpolation is torch's upsample_bilinear2d with align_corners=False
 * and no antialias, the same source taps as helper-augment's resizedCrop (torchvision's tensor default), so a crop
 * done here while decoding equals the batched crop of the same box up to float rounding. No tfjs: it runs in the
 * decode workers.
 */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
  flip: boolean;
}

/** torch's source taps for `out` samples over `len` pixels from `start` (helper-augment's bilinearTaps). */
function taps(start: number, len: number, out: number, flip: boolean) {
  const i0 = new Int32Array(out),
    i1 = new Int32Array(out),
    w1 = new Float32Array(out);
  const scale = Math.fround(len / out);
  for (let d = 0; d < out; d++) {
    let src = Math.fround(Math.fround(scale * (d + 0.5)) - 0.5);
    if (src < 0) src = 0;
    const a = Math.floor(src);
    const k = flip ? out - 1 - d : d;
    i0[k] = start + a;
    i1[k] = start + (a < len - 1 ? a + 1 : a);
    w1[k] = src - a;
  }
  return { i0, i1, w1 };
}

export function resizedCropInto(
  src: Uint8Array,
  srcHeight: number,
  srcWidth: number,
  channels: number,
  box: CropBox,
  outHeight: number,
  outWidth: number,
  out: Float32Array,
  offsetInOut: number,
  scale: ArrayLike<number>,
  offset: ArrayLike<number>,
): void {
  const { top, left, height, width } = box;
  if (top < 0 || left < 0 || height < 1 || width < 1 || top + height > srcHeight || left + width > srcWidth)
    throw new Error(`crop ${JSON.stringify(box)} is not inside the ${srcHeight}x${srcWidth} image`);
  const C = channels;
  const rows = taps(top, height, outHeight, false);
  const cols = taps(left, width, outWidth, box.flip);
  // one vertically interpolated source row (only the box's columns), then the horizontal taps
  const row = new Float32Array(width * C);
  const rowStride = srcWidth * C;
  let o = offsetInOut;
  const rw = width * C;
  for (let y = 0; y < outHeight; y++) {
    const r0 = rows.i0[y] * rowStride + left * C,
      r1 = rows.i1[y] * rowStride + left * C;
    const t = rows.w1[y];
    if (t === 0) for (let j = 0; j < rw; j++) row[j] = src[r0 + j];
    else
      for (let j = 0; j < rw; j++) {
        const a = src[r0 + j];
        row[j] = a + (src[r1 + j] - a) * t;
      }
    if (C === 3) {
      const s0 = scale[0],
        s1 = scale[1],
        s2 = scale[2],
        o0 = offset[0],
        o1 = offset[1],
        o2 = offset[2];
      for (let x = 0; x < outWidth; x++) {
        const c0 = (cols.i0[x] - left) * 3,
          c1 = (cols.i1[x] - left) * 3;
        const u = cols.w1[x];
        const a0 = row[c0],
          a1 = row[c0 + 1],
          a2 = row[c0 + 2];
        out[o] = (a0 + (row[c1] - a0) * u) * s0 + o0;
        out[o + 1] = (a1 + (row[c1 + 1] - a1) * u) * s1 + o1;
        out[o + 2] = (a2 + (row[c1 + 2] - a2) * u) * s2 + o2;
        o += 3;
      }
    } else
      for (let x = 0; x < outWidth; x++) {
        const c0 = (cols.i0[x] - left) * C,
          c1 = (cols.i1[x] - left) * C;
        const u = cols.w1[x];
        for (let c = 0; c < C; c++) {
          const a = row[c0 + c];
          out[o++] = (a + (row[c1 + c] - a) * u) * scale[c] + offset[c];
        }
      }
  }
}
