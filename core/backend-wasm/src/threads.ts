// Runs our wasm kernels on more than one core, in place on the tfjs heap.
//
// When the tfjs heap is a shared memory (shared-memory.ts), each worker thread instantiates the
// kernel module over that same memory with a shadow stack of its own, and then waits on a small
// control block in a SharedArrayBuffer. A kernel call is split into disjoint parts (images of the
// batch, Winograd planes, rows of a GEMM); the calling thread runs the first part and the workers
// the others, so the result is bit-identical to one thread running all parts in order. Only the
// calling thread allocates; workers never call malloc.
//
// TRICKS_WASM_THREADS=N sets the number of threads (default: the cores Node reports, at most 8;
// 1 turns threading off).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { kernelModule, type Native, type NativeExports } from './native.js';

export type KernelName = keyof NativeExports;
export type Job = [KernelName, number[]];

/**
 * Control block layout (Int32 slots), then the arguments as float64 from ARGS_BYTE, then the UTF-8 message of
 * a failed call (MESSAGE_BYTES at most, its length in slot ERROR): a worker's stderr would not be flushed while
 * the main thread waits for it, so the message travels back through shared memory.
 */
export const SEQ = 0,
  DONE = 1,
  FN = 2,
  NARGS = 3,
  ERROR = 4,
  READY = 5;
export const ARGS_BYTE = 64,
  MAX_ARGS = 24,
  MESSAGE_BYTE = ARGS_BYTE + 8 * MAX_ARGS,
  MESSAGE_BYTES = 1024,
  CTRL_BYTES = MESSAGE_BYTE + MESSAGE_BYTES;

/** ROWS_BLOCK in kernels.c: the row blocks that per-channel sums add up in a fixed order. */
export const ROWS_BLOCK = 256;

/** How many threads the kernels use: TRICKS_WASM_THREADS, or the machine's cores (at most 8). */
export function threadCount(): number {
  const env = process.env.TRICKS_WASM_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new Error(`TRICKS_WASM_THREADS=${env}: expected a whole number >= 1`);
    return Math.min(n, 64);
  }
  return Math.max(1, Math.min(8, availableParallelism()));
}

/**
 * TRICKS_WASM_THREADS for each of `jobs` trainings that run at once on this machine: the cores shared
 * out (at least 1), or the value the user set.
 */
export function threadsPerJob(jobs: number): string {
  const env = process.env.TRICKS_WASM_THREADS;
  if (env !== undefined && env !== '') return env;
  return String(Math.max(1, Math.floor(threadCount() / Math.max(1, jobs))));
}

interface Helper {
  worker: Worker;
  ctrl: Int32Array;
  args: Float64Array;
  seq: number;
}

/** The kernel module's exported functions, in the module's own order: the indices both sides agree on. */
function exportedFunctions(module: WebAssembly.Module): string[] {
  return WebAssembly.Module.exports(module)
    .filter((e) => e.kind === 'function')
    .map((e) => e.name);
}

const pools = new WeakMap<Native, Threads>();

export class Threads {
  private readonly helpers: Helper[] = [];
  private readonly index = new Map<string, number>();

  private constructor(
    private readonly nat: Native,
    wanted: number,
  ) {
    if (!nat.shared) return;
    const module = kernelModule(true);
    const names = exportedFunctions(module);
    names.forEach((n, i) => this.index.set(n, i));
    for (let i = 1; i < wanted; i++) {
      const sab = new SharedArrayBuffer(CTRL_BYTES);
      const ctrl = new Int32Array(sab);
      const worker = new Worker(new URL('./threads-worker.js', import.meta.url), {
        workerData: { module, memory: nat.memory, stack: nat.stack(), ctrl: sab, names },
      });
      worker.unref();
      // Waits (blocking, at most 10 s) for the worker to instantiate the module over the heap.
      if (Atomics.wait(ctrl, READY, 0, 10_000) === 'timed-out' || Atomics.load(ctrl, READY) !== 1) {
        void worker.terminate();
        break;
      }
      this.helpers.push({ worker, ctrl, args: new Float64Array(sab, ARGS_BYTE, MAX_ARGS), seq: 0 });
    }
  }

  /** The pool of a backend's kernels (started on first use). */
  static of(nat: Native): Threads {
    let t = pools.get(nat);
    if (t === undefined) {
      t = new Threads(nat, threadCount());
      pools.set(nat, t);
    }
    return t;
  }

  /** Threads available, the calling one included. */
  get count(): number {
    return this.helpers.length + 1;
  }

  /** Runs the jobs at once (at most `count`): the first on this thread, the rest on the workers. */
  run(jobs: Job[]): void {
    if (jobs.length > this.count) throw new Error(`${jobs.length} kernel jobs for ${this.count} threads`);
    for (let i = 1; i < jobs.length; i++) {
      const h = this.helpers[i - 1];
      const [fn, args] = jobs[i];
      if (args.length > MAX_ARGS) throw new Error(`${fn}: too many arguments`);
      h.ctrl[FN] = this.index.get(fn)!;
      h.ctrl[NARGS] = args.length;
      h.args.set(args);
      h.seq = (h.seq + 1) | 0;
      Atomics.store(h.ctrl, SEQ, h.seq);
      Atomics.notify(h.ctrl, SEQ);
    }
    let error: unknown;
    if (jobs.length > 0) {
      const [fn, args] = jobs[0];
      try {
        (this.nat.k[fn] as (...a: number[]) => void)(...args);
      } catch (e) {
        error = e;
      }
    }
    for (let i = 1; i < jobs.length; i++) {
      const h = this.helpers[i - 1];
      for (let spin = 0; Atomics.load(h.ctrl, DONE) !== h.seq; spin++) {
        if (spin > 2000) Atomics.wait(h.ctrl, DONE, Atomics.load(h.ctrl, DONE), 50);
      }
      if (h.ctrl[ERROR] !== 0) {
        const bytes = new Uint8Array(h.ctrl.buffer, MESSAGE_BYTE, Math.min(Math.max(h.ctrl[ERROR]!, 0), MESSAGE_BYTES)).slice();
        h.ctrl[ERROR] = 0;
        const message = new TextDecoder().decode(bytes);
        error ??= Object.assign(new Error(`wasm kernel ${jobs[i]![0]} failed on a kernel thread: ${message}`), {
          name: /^RuntimeError\b/.test(message) ? 'RuntimeError' : 'Error',
        });
      }
    }
    if (error !== undefined) throw error;
  }

  /**
   * sgemm (kernels.c) split over threads: by planes when there are at least as many planes as
   * threads, otherwise by rows of C. `scratch` holds `count` blocks of `scratchFloats` floats.
   * Pointers are byte offsets into the heap; strides are in floats.
   */
  sgemm(
    P: number,
    M: number,
    N: number,
    K: number,
    A: number,
    ars: number,
    aks: number,
    aps: number,
    B: number,
    bks: number,
    bns: number,
    bps: number,
    C: number,
    ldc: number,
    cps: number,
    accumulate: number,
    scratch: number,
    scratchFloats: number,
  ): void {
    const S = (i: number) => scratch + 4 * i * scratchFloats;
    if (P >= this.count || M < 4 * this.count) {
      this.run(
        this.ranges(P).map(([a, b], i) => [
          'sgemm',
          [b - a, M, N, K, A + 4 * a * aps, ars, aks, aps, B + 4 * a * bps, bks, bns, bps, C + 4 * a * cps, ldc, cps, accumulate, S(i)],
        ]),
      );
      return;
    }
    // rows in multiples of the 4-row register tile, so each part runs full tiles
    const tiles = Math.ceil(M / 4);
    this.run(
      this.ranges(tiles).map(([a, b], i) => {
        const r0 = a * 4,
          r1 = Math.min(M, b * 4);
        return [
          'sgemm',
          [P, r1 - r0, N, K, A + 4 * r0 * ars, ars, aks, aps, B, bks, bns, bps, C + 4 * r0 * ldc, ldc, cps, accumulate, S(i)],
        ];
      }),
    );
  }

  /**
   * Runs `job(r0, r1, block0)` over [0, rows) split between threads in whole ROWS_BLOCK blocks
   * (block0: index of the first block); returns the number of blocks.
   */
  byBlocks(rows: number, job: (r0: number, r1: number, block0: number) => Job): number {
    const blocks = Math.ceil(rows / ROWS_BLOCK);
    this.run(this.ranges(blocks).map(([a, b]) => job(a * ROWS_BLOCK, Math.min(rows, b * ROWS_BLOCK), a)));
    return blocks;
  }

  /** Runs `job(r0, r1)` over [0, rows) split evenly between threads. */
  byRows(rows: number, job: (r0: number, r1: number) => Job): void {
    this.run(this.ranges(rows).map(([a, b]) => job(a, b)));
  }

  /** Splits [0, n) into at most `count` contiguous non-empty ranges, the first ones larger. */
  ranges(n: number, parts = this.count): Array<[number, number]> {
    const k = Math.max(1, Math.min(parts, n));
    const out: Array<[number, number]> = [];
    for (let i = 0, start = 0; i < k; i++) {
      const len = Math.floor(n / k) + (i < n % k ? 1 : 0);
      out.push([start, start + len]);
      start += len;
    }
    return out;
  }
}
