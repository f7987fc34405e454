// Loads the SIMD kernels of native/kernels.c into the linear memory of a tfjs wasm backend, so
// they read and write tensors in place (no copies between heaps).
import type { DataId, DataType, TensorInfo } from '@tensorflow/tfjs-core';
import { KERNELS_WASM_BASE64 } from './native/kernels.wasm.js';
import { markMemoryImportShared } from './shared-memory.js';

/** The parts of tfjs-backend-wasm's BackendWasm that the kernels use. */
export interface WasmBackend {
  wasm: {
    _malloc(bytes: number): number;
    _free(ptr: number): void;
    asm: Record<string, unknown>;
  };
  dataIdMap: { get(dataId: DataId): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  disposeData(dataId: DataId, force?: boolean): boolean;
}

type F = (...args: number[]) => void;

/** What a kernel func receives, typed for the given input names and attributes. */
export type KernelArgs<I extends string, A> = {
  inputs: Record<I, TensorInfo> & Partial<Record<string, TensorInfo>>;
  backend: WasmBackend;
  attrs: A;
};

export interface NativeExports {
  wino_input: F;
  wino_output: F;
  wino_grad_output: F;
  wino_filter: F;
  wino_filter_grad: F;
  sgemm: F;
  im2col: F;
  bias_act: F;
  dw_grad_input: F;
  dw_grad_filter: F;
  zero_floats: F;
  scale_channels: F;
  broadcast_rows: F;
  reduce_blocks: F;
  bn_grad_blocks: F;
  sum_blocks: F;
  bn_apply: F;
  bn_train_dx: F;
  binary_op: F;
  relu_grad: F;
  sgd_step: F;
  adam_step: F;
  max_pool_grad: F;
  col2im: F;
  dw_conv: F;
  dw_grad_filter1: F;
  act_op: F;
  reduce_groups: F;
  binary_groups: F;
  broadcast_groups: F;
}

const STACK_BYTES = 1 << 18;
const GEMM_KC = 256; // KC in kernels.c
const GEMM_NC = 512; // NC in kernels.c
const GEMM_NR = 8; // NR in kernels.c

let compiled: WebAssembly.Module | undefined;
let compiledShared: WebAssembly.Module | undefined;

/** The kernel module, compiled once per kind of memory it links against. */
export function kernelModule(shared: boolean): WebAssembly.Module {
  if (!shared) return (compiled ??= new WebAssembly.Module(Buffer.from(KERNELS_WASM_BASE64, 'base64')));
  return (compiledShared ??= new WebAssembly.Module(
    markMemoryImportShared(Buffer.from(KERNELS_WASM_BASE64, 'base64')) as Uint8Array<ArrayBuffer>,
  ));
}
const instances = new WeakMap<object, Native>();

/** The kernels bound to one backend's heap. */
export class Native {
  readonly k: NativeExports;
  readonly memory: WebAssembly.Memory;
  /** Whether the tfjs heap is a shared memory (see shared-memory.ts): then kernels can run on threads. */
  readonly shared: boolean;

  private constructor(private readonly backend: WasmBackend) {
    const memory = backend.wasm.asm['memory'];
    if (!(memory instanceof WebAssembly.Memory)) {
      throw new Error('tfjs wasm backend: its module exports no memory; the training kernels need tfjs-backend-wasm 4.x');
    }
    this.memory = memory;
    this.shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const instance = new WebAssembly.Instance(kernelModule(this.shared), { env: { memory } });
    (instance.exports['__stack_pointer'] as WebAssembly.Global).value = this.stack();
    this.k = instance.exports as unknown as NativeExports;
  }

  /** A shadow stack for one instance of the kernel module, malloc'd from the tfjs heap: its top. */
  stack(): number {
    return (this.backend.wasm._malloc(STACK_BYTES) >>> 0) + STACK_BYTES;
  }

  static of(backend: WasmBackend): Native {
    let n = instances.get(backend);
    if (n === undefined) {
      n = new Native(backend);
      instances.set(backend, n);
    }
    return n;
  }

  /** Heap address of a tensor's data. */
  ptr(t: TensorInfo): number {
    const data = this.backend.dataIdMap.get(t.dataId);
    if (data === undefined) throw new Error('tensor data not on the wasm backend');
    return data.memoryOffset;
  }

  /** The whole heap (views must be made again after any allocation: the heap may have grown). */
  heap(): ArrayBuffer {
    return this.memory.buffer;
  }

  /** Runs f with scratch blocks of the given float counts, freed afterwards. */
  withScratch<T>(floats: number[], f: (...ptrs: number[]) => T): T {
    const ptrs = floats.map((n) => this.backend.wasm._malloc(Math.max(4, n * 4)) >>> 0);
    try {
      return f(...ptrs);
    } finally {
      for (const p of ptrs) this.backend.wasm._free(p);
    }
  }

  /** Floats of packing scratch that sgemm needs for N output columns. */
  static gemmScratch(N: number): number {
    return GEMM_KC * Math.ceil(Math.min(N, GEMM_NC) / GEMM_NR) * GEMM_NR;
  }
}
