/**
 * PyTorch checkpoints (`torch.save`): the zip format of torch >= 1.6 (`<name>/data.pkl` + one file per storage)
 * and the legacy format before it (a sequence of pickles, then the raw storages). The pickle is read with
 * pickleparser, whose name resolver is ours: it resolves only torch's tensor rebuild functions, its storage
 * types and collections.OrderedDict, to JavaScript functions of this module. Any other GLOBAL refuses the whole
 * file before anything else happens: no Python object is ever created, and nothing runs.
 */
import { createRequire } from 'node:module';
import { unzipSync } from 'fflate';
import { ELEMENT_BYTES, gather, numel, type CheckpointTensor } from './tensor.js';

type PickleParser = typeof import('pickleparser');
const { Parser, BufferReader } = createRequire(import.meta.url)('pickleparser') as PickleParser;

/** A reason a checkpoint cannot be read; the caller turns it into a TricksError naming the file. */
export class CheckpointError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

const STORAGE_TYPES: Record<string, string> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

const STORAGE = Symbol('storage type');
const TENSOR = Symbol('tensor');
interface StorageType {
  [STORAGE]: string;
}
interface Storage {
  key: string;
  dtype: string;
  numel: number;
  /** Legacy format: a view's offset into its root storage, in elements. */
  viewOffset: number;
}
interface TensorRef {
  [TENSOR]: true;
  storage: Storage;
  offset: number;
  shape: number[];
  stride: number[];
}

/** The Python globals a state_dict pickle may name, and what they become here. */
export const ALLOWED_GLOBALS = [
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_parameter',
  ...Object.keys(STORAGE_TYPES).map((s) => `torch.${s}`),
];

const isStorage = (s: unknown): s is Storage => typeof s === 'object' && s !== null && 'key' in s && 'dtype' in s;
const asShape = (v: unknown, what: string): number[] => {
  if (!Array.isArray(v) || !v.every((n) => Number.isInteger(n) && n >= 0))
    throw new CheckpointError(`a tensor's ${what} is not a tuple of sizes`);
  return v as number[];
};

function rebuildTensor(storage: unknown, offset: unknown, size: unknown, stride: unknown): TensorRef {
  if (!isStorage(storage)) throw new CheckpointError('a tensor is rebuilt from something that is not a storage');
  if (!Number.isInteger(offset)) throw new CheckpointError("a tensor's storage offset is not an integer");
  // frozen: a BUILD opcode aimed at it fails instead of rewriting its shape
  return Object.freeze({
    [TENSOR]: true as const,
    storage,
    offset: offset as number,
    shape: asShape(size, 'size'),
    stride: asShape(stride, 'stride'),
  });
}

function resolveGlobal(module: string, name: string): unknown {
  const full = `${module}.${name}`;
  if (full === 'collections.OrderedDict')
    return function OrderedDict() {
      return new Map();
    };
  if (full === 'torch._utils._rebuild_tensor_v2' || full === 'torch._utils._rebuild_tensor') return rebuildTensor;
  if (full === 'torch._utils._rebuild_parameter') return (data: unknown) => data;
  if (module === 'torch' && STORAGE_TYPES[name]) return Object.freeze({ [STORAGE]: STORAGE_TYPES[name] }) as StorageType;
  throw new CheckpointError(
    `its pickle names the Python object ${full}, which is not part of a state_dict: the file was refused and nothing in it ran`,
    `a checkpoint may hold only tensors (${ALLOWED_GLOBALS.slice(1, 4).join(', ')}, torch.*Storage) in dicts, OrderedDicts, lists and tuples; save model.state_dict() alone, or re-save the file with torch.save(state_dict)`,
  );
}

function storageFromPid(pid: unknown, legacy: boolean): Storage {
  if (!Array.isArray(pid) || pid[0] !== 'storage')
    throw new CheckpointError(`its pickle refers to an unknown persistent object ${JSON.stringify(String(pid))}`);
  const type = pid[1] as StorageType | undefined;
  const dtype = type?.[STORAGE];
  if (!dtype) throw new CheckpointError('a storage of its pickle has no torch storage type');
  const key = String(pid[2]);
  const n = Number(pid[4]);
  let viewOffset = 0;
  if (legacy && Array.isArray(pid[5])) viewOffset = Number(pid[5][1]);
  return Object.freeze({ key, dtype, numel: n, viewOffset });
}

function parse(reader: InstanceType<typeof BufferReader>, legacy: boolean, storages: Map<string, Storage>): unknown {
  const parser = new Parser({
    nameResolver: { resolve: resolveGlobal as never },
    persistentResolver: {
      resolve: ((pid: unknown) => {
        const s = storageFromPid(pid, legacy);
        const known = storages.get(s.key);
        if (known && known.dtype !== s.dtype) throw new CheckpointError(`storage ${s.key} is read as ${known.dtype} and as ${s.dtype}`);
        if (!known || known.numel < s.numel) storages.set(s.key, s);
        return s;
      }) as never,
    },
    unpicklingTypeOfDictionary: 'Map',
  });
  return parser.read(reader);
}

/** Wraps pickleparser's own errors (a truncated stream, an unknown opcode) as a CheckpointError. */
function safely<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    const m = (e as Error).message ?? String(e);
    if (/end of file|out of range|offset is outside/i.test(m))
      throw new CheckpointError(`${what} ends early: the file is cut short or damaged`, 'download it again');
    throw new CheckpointError(`${what} cannot be read (${m})`, 'download it again; a state_dict saved with torch.save is expected');
  }
}

/** The tensors of a parsed checkpoint: a state_dict, or a dict that holds one under a usual key. */
function stateDict(root: unknown): Map<string, TensorRef> {
  const isTensor = (v: unknown): v is TensorRef => typeof v === 'object' && v !== null && TENSOR in v;
  const tensorsOf = (m: unknown) => {
    if (!(m instanceof Map)) return undefined;
    const out = new Map<string, TensorRef>();
    for (const [k, v] of m) if (isTensor(v)) out.set(String(k), v);
    return out.size ? out : undefined;
  };
  let found = tensorsOf(root);
  if (!found && root instanceof Map) {
    for (const key of ['state_dict', 'model', 'model_state_dict', 'module', 'state_dict_ema', 'model_ema']) {
      found = tensorsOf(root.get(key));
      if (found) break;
    }
  }
  if (!found)
    throw new CheckpointError(
      'it holds no tensors (no state_dict)',
      'save model.state_dict(), as torchvision and timm publish their weights',
    );
  return stripModulePrefix(found);
}

/** nn.DataParallel's state_dict names every key `module.<key>`: the model's own names are the rest. */
export function stripModulePrefix<T>(tensors: Map<string, T>): Map<string, T> {
  const keys = [...tensors.keys()];
  if (!keys.length || !keys.every((k) => k.startsWith('module.'))) return tensors;
  return new Map([...tensors].map(([k, v]) => [k.slice('module.'.length), v]));
}

function materialize(refs: Map<string, TensorRef>, bytesOf: (s: Storage) => Uint8Array | undefined): Map<string, CheckpointTensor> {
  const out = new Map<string, CheckpointTensor>();
  for (const [name, t] of refs) {
    const { storage, offset, shape, stride } = t;
    const data = bytesOf(storage);
    if (!data)
      throw new CheckpointError(
        `the data of tensor ${name} (storage ${storage.key}) is missing: the file is cut short or damaged`,
        'download it again',
      );
    const size = ELEMENT_BYTES[storage.dtype];
    const base = offset + storage.viewOffset;
    const last = shape.length === 0 ? base : base + shape.reduce((a, n, i) => a + (n - 1) * stride[i], 0);
    if (numel(shape) > 0 && (last + 1) * size > data.byteLength)
      throw new CheckpointError(`tensor ${name} reaches past the end of its data: the file is cut short or damaged`, 'download it again');
    out.set(name, { shape, dtype: storage.dtype, values: () => gather(data, storage.dtype, shape, base, stride) });
  }
  return out;
}

export const isZip = (b: Uint8Array) => b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];
export const isLegacyTorch = (b: Uint8Array) => LEGACY_MAGIC.every((v, i) => b[i] === v);
export const isPickle = (b: Uint8Array) => b.length >= 2 && b[0] === 0x80 && b[1] >= 2 && b[1] <= 5;

/** The tensors of a torch >= 1.6 checkpoint (a zip). */
export function readTorchZip(bytes: Uint8Array): Map<string, CheckpointTensor> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw new CheckpointError(`its zip is cut short or damaged (${(e as Error).message})`, 'download it again');
  }
  const pkl = Object.keys(files).find((f) => f === 'data.pkl' || f.endsWith('/data.pkl'));
  if (!pkl) throw new CheckpointError('it is a zip file but not a PyTorch checkpoint (no data.pkl inside)');
  const prefix = pkl.slice(0, -'data.pkl'.length);
  const order = files[`${prefix}byteorder`];
  if (order && new TextDecoder().decode(order).trim() !== 'little')
    throw new CheckpointError('it was saved on a big-endian machine, which is not supported');
  const storages = new Map<string, Storage>();
  const root = safely('its pickle (data.pkl)', () => parse(new BufferReader(files[pkl]), false, storages));
  return materialize(stateDict(root), (s) => files[`${prefix}data/${s.key}`]);
}

/** The tensors of a legacy (torch < 1.6) checkpoint: magic, protocol, sys_info, the object, the storage keys, the storages. */
export function readTorchLegacy(bytes: Uint8Array): Map<string, CheckpointTensor> {
  const reader = new BufferReader(bytes);
  const storages = new Map<string, Storage>();
  const root = safely('its pickle', () => {
    reader.skip(LEGACY_MAGIC.length); // the magic number's pickle, checked byte for byte (a LONG1 pickleparser cannot hold)
    for (let i = 0; i < 2; i++) parse(reader, true, storages); // protocol version, sys_info
    return parse(reader, true, storages);
  });
  const keys = safely('its list of storages', () => parse(reader, true, storages));
  if (!Array.isArray(keys)) throw new CheckpointError('its list of storages is not a list: not a torch checkpoint');
  const data = new Map<string, Uint8Array>();
  let pos = reader.position;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const k of keys.map(String)) {
    const s = storages.get(k);
    if (!s) throw new CheckpointError(`storage ${k} is listed but no tensor uses it: not a torch checkpoint`);
    if (pos + 8 > bytes.byteLength) throw new CheckpointError('it ends early: the file is cut short or damaged', 'download it again');
    const n = Number(view.getBigInt64(pos, true));
    const end = pos + 8 + n * ELEMENT_BYTES[s.dtype];
    if (end > bytes.byteLength) throw new CheckpointError('it ends early: the file is cut short or damaged', 'download it again');
    data.set(k, bytes.subarray(pos + 8, end));
    pos = end;
  }
  return materialize(stateDict(root), (s) => data.get(s.key));
}
