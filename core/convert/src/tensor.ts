/** A tensor read from a checkpoint: its shape, its stored dtype, and its values as float32 (copied, contiguous). */
export interface CheckpointTensor {
  shape: number[];
  /** The stored dtype: float32, float16, bfloat16, float64, int64, ... */
  dtype: string;
  /** The values as float32, in row-major order (integers converted too; read on demand). */
  values(): Float32Array;
}

/** Bytes per element of the dtypes torch and safetensors store. */
export const ELEMENT_BYTES: Record<string, number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

export const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** IEEE half to float. */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/**
 * Element i of a little-endian buffer of `dtype` as a number: a reader for one dtype. The buffer is copied into
 * an aligned one first, so a tensor at any byte offset of a file reads.
 */
function elementReader(bytes: Uint8Array, dtype: string): (i: number) => number {
  const aligned = new Uint8Array(bytes); // a copy, offset 0
  const view = new DataView(aligned.buffer);
  switch (dtype) {
    case 'float32': {
      const a = new Float32Array(aligned.buffer, 0, aligned.byteLength >> 2);
      return (i) => a[i];
    }
    case 'float16':
      return (i) => halfToFloat(view.getUint16(2 * i, true));
    case 'bfloat16': {
      const out = new DataView(new ArrayBuffer(4));
      return (i) => {
        out.setUint32(0, view.getUint16(2 * i, true) << 16, true);
        return out.getFloat32(0, true);
      };
    }
    case 'float64':
      return (i) => view.getFloat64(8 * i, true);
    case 'int64':
      return (i) => Number(view.getBigInt64(8 * i, true));
    case 'int32':
      return (i) => view.getInt32(4 * i, true);
    case 'int16':
      return (i) => view.getInt16(2 * i, true);
    case 'int8':
      return (i) => view.getInt8(i);
    case 'uint8':
    case 'bool':
      return (i) => view.getUint8(i);
    default:
      throw new Error(`unsupported dtype ${dtype}`);
  }
}

/**
 * The float32 values of a strided view into `storage` (torch's offset and strides, in elements), row-major.
 * A contiguous float32 view is a plain copy.
 */
export function gather(storage: Uint8Array, dtype: string, shape: number[], offset: number, stride: number[]): Float32Array {
  const n = numel(shape);
  const out = new Float32Array(n);
  const contiguous = stride.every((s, i) => s === numel(shape.slice(i + 1)) || shape[i] === 1);
  const size = ELEMENT_BYTES[dtype];
  if (contiguous) {
    const bytes = storage.subarray(offset * size, (offset + n) * size);
    if (dtype === 'float32') {
      out.set(new Float32Array(new Uint8Array(bytes).buffer));
      return out;
    }
    const at = elementReader(bytes, dtype);
    for (let i = 0; i < n; i++) out[i] = at(i);
    return out;
  }
  const at = elementReader(storage, dtype);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let p = offset;
    for (let d = 0; d < shape.length; d++) p += idx[d] * stride[d];
    out[i] = at(p);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** Row-major transpose: out has shape perm.map(p => shape[p]) (as numpy's transpose). */
export function permute(data: Float32Array, shape: number[], perm: number[]): Float32Array {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]);
  const inStride = shape.map((_, i) => numel(shape.slice(i + 1)));
  const stride = perm.map((p) => inStride[p]); // input stride of each output axis
  const out = new Float32Array(data.length);
  const idx = new Array<number>(rank).fill(0);
  const last = rank - 1;
  const inner = outShape[last];
  const innerStride = stride[last];
  for (let o = 0; o < data.length; o += inner) {
    let p = 0;
    for (let d = 0; d < last; d++) p += idx[d] * stride[d];
    for (let j = 0; j < inner; j++) out[o + j] = data[p + j * innerStride];
    for (let d = last - 1; d >= 0; d--) {
      if (++idx[d] < outShape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}
