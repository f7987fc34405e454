// The wasm kernels on more than one thread (core/backend-wasm/src/threads.ts): the tfjs heap is
// made shared, the work is split into disjoint parts, and so the outputs are bit-identical to one
// thread's, whatever the thread count.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { importSharedMemory, markMemoryImportShared } from '../src/shared-memory.js';
import { KERNELS_WASM_BASE64 } from '../src/native/kernels.wasm.js';

const child = fileURLToPath(new URL('./fixtures/wasm-threads-child.js', import.meta.url));
const runChild = (threads: string) =>
  JSON.parse(
    execFileSync(process.execPath, [child], {
      env: { ...process.env, TRICKS_WASM_THREADS: threads },
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
      .pop()!,
  ) as { threads: number; shared: boolean; hash: string };

describe('wasm kernels on several threads', function () {
  this.timeout(120000);

  it('conv forward and both gradients (Winograd, im2col, col2im, pointwise), depthwise forward and gradients, max-pool gradient, h-swish, matMul, batch norm and its gradient, sums are bit-identical on 1, 2 and 3 threads', () => {
    const one = runChild('1'),
      two = runChild('2'),
      three = runChild('3');
    expect(one).to.include({ threads: 1, shared: false });
    expect(two).to.include({ threads: 2, shared: true });
    expect(three).to.include({ threads: 3, shared: true });
    expect(two.hash).to.equal(one.hash);
    expect(three.hash).to.equal(one.hash);
  });

  it("a kernel that faults on a helper thread fails on the main thread with the helper's message", () => {
    const out = execFileSync(process.execPath, [fileURLToPath(new URL('./fixtures/wasm-thread-fault-child.js', import.meta.url))], {
      env: { ...process.env, TRICKS_WASM_THREADS: '2' },
      encoding: 'utf8',
    });
    const r = JSON.parse(out.trim().split('\n').pop()!) as { threads: number; name: string; error: string | null };
    expect(r.threads).to.equal(2);
    expect(r.error).to.match(/wasm kernel zero_floats failed on a kernel thread: RuntimeError: memory access out of bounds/);
    expect(r.name).to.equal('RuntimeError');
  });

  it('a kernel thread woken with no new call (a late notify) does not run its last call again', () => {
    const out = execFileSync(process.execPath, [fileURLToPath(new URL('./fixtures/wasm-thread-late-notify-child.js', import.meta.url))], {
      env: { ...process.env, TRICKS_WASM_THREADS: '2' },
      encoding: 'utf8',
    });
    const r = JSON.parse(out.trim().split('\n').pop()!) as { threads: number; woken: number; y: number[] };
    expect(r.threads).to.equal(2);
    expect(r.woken, 'the helper was asleep when the late notify came').to.equal(1);
    // y = y + 1 ran once; running it again on the late notify gave 2 (issue 18)
    expect(r.y).to.deep.equal([1, 1, 1, 1]);
  });

  it("rewrites a module's own memory into a shared import with the same limits", () => {
    // a module with one memory (initial 2 pages, max 10) that exports it, plus a function import
    const wat = Uint8Array.from([
      0,
      97,
      115,
      109,
      1,
      0,
      0,
      0,
      1,
      4,
      1,
      96,
      0,
      0, // type section: () -> ()
      2,
      7,
      1,
      1,
      109,
      1,
      102,
      0,
      0, // import m.f: func type 0
      5,
      4,
      1,
      1,
      2,
      10, // memory: flags 1, min 2, max 10
      7,
      10,
      1,
      6,
      109,
      101,
      109,
      111,
      114,
      121,
      2,
      0,
    ]); // export "memory" = memory 0
    expect(() => new WebAssembly.Module(wat)).to.not.throw();
    const r = importSharedMemory(wat)!;
    expect(r).to.include({ initial: 2, maximum: 10 });
    const mod = new WebAssembly.Module(r.bytes as Uint8Array<ArrayBuffer>);
    expect(WebAssembly.Module.imports(mod).map((i) => `${i.module}.${i.name}:${i.kind}`)).to.deep.equal([
      'm.f:function',
      'env.memory:memory',
    ]);
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 10, shared: true });
    const inst = new WebAssembly.Instance(mod, { m: { f: () => {} }, env: { memory } });
    expect(inst.exports['memory']).to.equal(memory);
    expect(importSharedMemory(r.bytes), 'already shared: left alone').to.equal(undefined);
  });

  it("marks the kernel module's memory import shared", () => {
    const mod = new WebAssembly.Module(markMemoryImportShared(Buffer.from(KERNELS_WASM_BASE64, 'base64')) as Uint8Array<ArrayBuffer>);
    const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    expect(() => new WebAssembly.Instance(mod, { env: { memory } })).to.not.throw();
    expect(() => new WebAssembly.Instance(mod, { env: { memory: new WebAssembly.Memory({ initial: 16 }) } })).to.throw();
  });
});
