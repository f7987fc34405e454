// A kernel thread (see threads.ts): the kernel module over the shared tfjs heap, waiting for calls.
import { workerData } from 'node:worker_threads';
import { ARGS_BYTE, DONE, ERROR, FN, MAX_ARGS, NARGS, READY, SEQ } from './threads.js';

const {
  module,
  memory,
  stack,
  ctrl: sab,
  names,
} = workerData as {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  stack: number;
  ctrl: SharedArrayBuffer;
  names: string[];
};
const instance = new WebAssembly.Instance(module, { env: { memory } });
(instance.exports['__stack_pointer'] as WebAssembly.Global).value = stack;
const fns = names.map((n) => instance.exports[n] as (...a: number[]) => void);
const ctrl = new Int32Array(sab);
const args = new Float64Array(sab, ARGS_BYTE, MAX_ARGS);
Atomics.store(ctrl, READY, 1);
Atomics.notify(ctrl, READY);

// Kernel calls come in bursts (a layer's transforms, GEMM and output; the next layer's): spin a
// little before sleeping, so that the next call does not pay a futex wake-up.
const SPIN = 20000;
let seen = 0;
for (;;) {
  for (let i = 0; i < SPIN && Atomics.load(ctrl, SEQ) === seen; i++);
  Atomics.wait(ctrl, SEQ, seen);
  seen = Atomics.load(ctrl, SEQ);
  try {
    fns[ctrl[FN]](...Array.from(args.subarray(0, ctrl[NARGS])));
  } catch (e) {
    process.stderr.write(`tricks wasm kernel thread: ${names[ctrl[FN]]}: ${(e as Error).stack ?? e}\n`);
    ctrl[ERROR] = 1;
  }
  Atomics.store(ctrl, DONE, seen);
  Atomics.notify(ctrl, DONE);
}
