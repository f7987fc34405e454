/**
 * safetensors (the Hugging Face hub's format, timm's weights there): an 8-byte little-endian header length, a
 * JSON header {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?}, then the raw little-endian bytes.
 */
import { CheckpointError, stripModulePrefix } from './torch.js';
import { ELEMENT_BYTES, gather, numel, type CheckpointTensor } from './tensor.js';

const DTYPES: Record<string, string> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};

/** Whether the bytes start like a safetensors file: a plausible header length and a JSON object after it. */
export function isSafetensors(b: Uint8Array): boolean {
  if (b.length < 10) return false;
  const n = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
  return n >= 2 && n < 100e6 && b[8] === 0x7b; // '{'
}

export function readSafetensors(bytes: Uint8Array): Map<string, CheckpointTensor> {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.byteLength) throw new CheckpointError('its header ends early: the file is cut short or damaged', 'download it again');
  let header: Record<string, { dtype?: string; shape?: number[]; data_offsets?: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new CheckpointError(`its header is not JSON (${(e as Error).message}): not a safetensors file, or a damaged one`);
  }
  const data = bytes.subarray(8 + n);
  const out = new Map<string, CheckpointTensor>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const dtype = DTYPES[t?.dtype ?? ''];
    if (!dtype)
      throw new CheckpointError(
        `tensor ${name} has dtype ${JSON.stringify(t?.dtype)}, which is not supported (${Object.keys(DTYPES).join(', ')})`,
      );
    const shape = t.shape;
    const offsets = t.data_offsets;
    if (!Array.isArray(shape) || !Array.isArray(offsets) || !offsets.every(Number.isInteger))
      throw new CheckpointError(`tensor ${name}'s entry in the header lacks a shape or data_offsets`);
    const [begin, end] = offsets;
    if (end - begin !== numel(shape) * ELEMENT_BYTES[dtype])
      throw new CheckpointError(`tensor ${name}: ${end - begin} bytes for shape [${shape.join(', ')}] of ${t.dtype}`);
    if (end > data.byteLength)
      throw new CheckpointError(`tensor ${name} reaches past the end of the file: it is cut short or damaged`, 'download it again');
    const bytesOf = data.subarray(begin, end);
    const stride = shape.map((_, i) => numel(shape.slice(i + 1)));
    out.set(name, { shape, dtype, values: () => gather(bytesOf, dtype, shape, 0, stride) });
  }
  if (!out.size) throw new CheckpointError('it holds no tensors');
  return stripModulePrefix(out);
}
