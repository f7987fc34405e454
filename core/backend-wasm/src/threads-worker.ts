// A kernel thread (see threads.ts): the kernel module over the shared tfjs heap, waiting for calls.
import { workerData } from 'node:worker_threads';
import { ARGS_BYTE, DONE, ERROR, FN, MAX_ARGS, MESSAGE_BYTE, MESSAGE_BYTES, NARGS, READY, SEQ } from './threads.js';

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
  // Sleep until SEQ moves, re-checking after every wake-up: a wake-up is no new call by itself. The caller
  // stores SEQ, then notifies; if it is descheduled in between, this thread sees the new SEQ while spinning,
  // runs the call, goes to sleep, and only then gets that notify. Taking it for a call ran the last call a
  // second time, while the caller had moved on (issue 18: 1 step in ~1,000 corrupted under CPU contention,
  // a diverged training, dlmalloc faults when the rerun wrote into freed blocks).
  while (Atomics.load(ctrl, SEQ) === seen) Atomics.wait(ctrl, SEQ, seen);
  seen = Atomics.load(ctrl, SEQ);
  try {
    fns[ctrl[FN]](...Array.from(args.subarray(0, ctrl[NARGS])));
  } catch (e) {
    // the message goes back through the control block (stderr would not be flushed while the main thread waits)
    const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    const { written } = new TextEncoder().encodeInto(text, new Uint8Array(sab, MESSAGE_BYTE, MESSAGE_BYTES));
    ctrl[ERROR] = Math.max(1, written);
  }
  Atomics.store(ctrl, DONE, seen);
  Atomics.notify(ctrl, DONE);
}
