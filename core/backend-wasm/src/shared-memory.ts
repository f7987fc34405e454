// Makes the linear memory of the tfjs wasm backend a shared WebAssembly.Memory, so that worker
// threads can run our kernels on tensors in place (core/backend-wasm/src/threads.ts).
//
// tfjs-backend-wasm's single-threaded SIMD module defines its own memory. Its threaded build cannot
// start in Node (its pthread workers come from a blob: URL), so instead we rewrite the single-threaded
// binary as it is instantiated: the memory definition becomes an import of a shared memory with the
// same limits. Nothing in the module's code depends on whether its memory is shared; the only
// difference is that memory.buffer is a SharedArrayBuffer. Our own kernel module gets the same
// treatment (its memory import is marked shared) so it can link against that memory.

const MAX_PAGES = 65536; // 4 GiB, the wasm32 limit

function readU32(b: Uint8Array, pos: number): [number, number] {
  let result = 0,
    shift = 0,
    byte: number;
  do {
    byte = b[pos++];
    result += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [result, pos];
}

function u32(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

const name = (s: string): number[] => [...u32(s.length), ...Buffer.from(s, 'utf8')];

interface Section {
  id: number;
  body: Uint8Array;
}

function sections(b: Uint8Array): Section[] {
  if (b.length < 8 || b[0] !== 0 || b[1] !== 0x61 || b[2] !== 0x73 || b[3] !== 0x6d) throw new Error('not a wasm binary');
  const out: Section[] = [];
  let pos = 8;
  while (pos < b.length) {
    const id = b[pos++];
    const [size, start] = readU32(b, pos);
    out.push({ id, body: b.subarray(start, start + size) });
    pos = start + size;
  }
  return out;
}

function assemble(header: Uint8Array, secs: Section[]): Uint8Array {
  const chunks: Uint8Array[] = [header.subarray(0, 8)];
  for (const s of secs) chunks.push(Uint8Array.from([s.id, ...u32(s.body.length)]), s.body);
  return Buffer.concat(chunks);
}

/** The names a module exports (enough parsing to recognise tfjs's module). */
function exportNames(secs: Section[]): string[] {
  const sec = secs.find((s) => s.id === 7);
  if (!sec) return [];
  const b = sec.body;
  let [count, pos] = readU32(b, 0);
  const names: string[] = [];
  while (count-- > 0) {
    const [len, p] = readU32(b, pos);
    names.push(Buffer.from(b.subarray(p, p + len)).toString('utf8'));
    pos = p + len + 1; // kind byte
    [, pos] = readU32(b, pos);
  }
  return names;
}

export interface SharedRewrite {
  bytes: Uint8Array;
  initial: number;
  maximum: number;
}

/**
 * The tfjs backend module with its one defined memory turned into the import env.memory (shared, same
 * initial size, maximum kept or 4 GiB), or undefined when the binary is not a module of that shape.
 */
export function importSharedMemory(bytes: Uint8Array): SharedRewrite | undefined {
  const secs = sections(bytes);
  const memIdx = secs.findIndex((s) => s.id === 5);
  const impIdx = secs.findIndex((s) => s.id === 2);
  if (memIdx < 0 || impIdx < 0) return undefined;
  const mem = secs[memIdx].body;
  const [count, p0] = readU32(mem, 0);
  if (count !== 1) return undefined;
  const flags = mem[p0];
  if (flags & 2) return undefined; // already shared
  const [initial, p1] = readU32(mem, p0 + 1);
  const maximum = flags & 1 ? readU32(mem, p1)[0] : MAX_PAGES;
  const imp = secs[impIdx].body;
  const [impCount, ip] = readU32(imp, 0);
  const entry = [...name('env'), ...name('memory'), 0x02, 0x03, ...u32(initial), ...u32(maximum)];
  const body = Buffer.concat([Uint8Array.from(u32(impCount + 1)), imp.subarray(ip), Uint8Array.from(entry)]);
  const out = secs.filter((_, i) => i !== memIdx).map((s) => (s.id === 2 ? { id: 2, body } : s));
  return { bytes: assemble(bytes, out), initial, maximum };
}

/** Our kernel module with its memory import (env.memory) marked shared, maximum 4 GiB. */
export function markMemoryImportShared(bytes: Uint8Array): Uint8Array {
  const secs = sections(bytes);
  const imp = secs.find((s) => s.id === 2);
  if (!imp) throw new Error('kernel module: no import section');
  const b = imp.body;
  let [count, pos] = readU32(b, 0);
  const head = pos;
  const entries: Uint8Array[] = [];
  let found = false;
  while (count-- > 0) {
    const start = pos;
    let [len, p] = readU32(b, pos);
    p += len;
    [len, p] = readU32(b, p);
    p += len;
    const kind = b[p++];
    if (kind === 0x02) {
      const flags = b[p];
      const [initial, q] = readU32(b, p + 1);
      const end = flags & 1 ? readU32(b, q)[1] : q;
      entries.push(Buffer.concat([b.subarray(start, p), Uint8Array.from([0x03, ...u32(initial), ...u32(MAX_PAGES)])]));
      pos = end;
      found = true;
      continue;
    }
    if (kind === 0x00)
      [, p] = readU32(b, p); // function: type index
    else if (kind === 0x03)
      p += 2; // global: type, mutability
    else if (kind === 0x01) {
      p += 1;
      const f = b[p];
      [, p] = readU32(b, p + 1);
      if (f & 1) [, p] = readU32(b, p);
    } // table
    else throw new Error(`kernel module: unknown import kind ${kind}`);
    entries.push(b.subarray(start, p));
    pos = p;
  }
  if (!found) throw new Error('kernel module: no memory import');
  const body = Buffer.concat([b.subarray(0, head), ...entries]);
  return assemble(
    bytes,
    secs.map((s) => (s === imp ? { id: 2, body } : s)),
  );
}

/** Set on globalThis once WebAssembly.instantiate is wrapped: a second copy of this package must not wrap it again. */
const HOOKED = Symbol.for('tricks.backend-wasm.shared-memory');

/**
 * Wraps WebAssembly.instantiate so that tfjs-backend-wasm's module (recognised by its exports) is
 * instantiated over a shared memory. Call before the wasm backend initializes; idempotent, also across
 * two copies of this package in one process (the flag lives on globalThis).
 * TRICKS_WASM_THREADS=1 turns it off (the memory stays private and the kernels single-threaded).
 */
export function shareTfjsWasmMemory(): void {
  const g = globalThis as { [HOOKED]?: boolean };
  if (g[HOOKED] || process.env.TRICKS_WASM_THREADS === '1') return;
  g[HOOKED] = true;
  const original = WebAssembly.instantiate.bind(WebAssembly) as (...a: unknown[]) => Promise<unknown>;
  const patched = (source: unknown, imports?: WebAssembly.Imports): Promise<unknown> => {
    if (!(source instanceof ArrayBuffer || ArrayBuffer.isView(source)) || imports?.['env'] === undefined) {
      return original(source, imports);
    }
    const bytes =
      source instanceof ArrayBuffer ? new Uint8Array(source) : new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
    let rewrite: SharedRewrite | undefined;
    try {
      rewrite = exportNames(sections(bytes)).includes('init_with_threads_count') ? importSharedMemory(bytes) : undefined;
    } catch {
      rewrite = undefined;
    }
    if (rewrite === undefined) return original(source, imports);
    const memory = new WebAssembly.Memory({ initial: rewrite.initial, maximum: rewrite.maximum, shared: true });
    return original(rewrite.bytes, { ...imports, env: { ...imports['env'], memory } });
  };
  (WebAssembly as { instantiate: unknown }).instantiate = patched;
}
