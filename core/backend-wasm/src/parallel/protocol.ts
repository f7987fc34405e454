// Messages between DataParallel (main thread) and its workers.

/** An ES module exporting a function that builds the model (called with `args`). */
export interface ModelRef {
  /** Absolute path or file: URL of the module. */
  module: string;
  /** Name of the exported builder; default 'default'. */
  export?: string;
  /** Arguments for the builder (structured-cloneable). */
  args?: unknown[];
}

export interface SgdOptions {
  lr: number;
  momentum?: number;
  /** Coupled (L2) weight decay added to every gradient, as torch.optim.SGD's weight_decay. */
  weightDecay?: number;
}

export interface WorkerInit {
  model: ModelRef;
  backend: string;
  optimizer: SgdOptions;
  labelSmoothing: number;
  rank: number;
  workers: number;
}

export type ToWorker =
  /** Shared gradient slots: workers x params float32; worker i writes [i*params, (i+1)*params). */
  | { kind: 'attach'; grads: SharedArrayBuffer }
  | { kind: 'get-weights' }
  | { kind: 'set-weights'; weights: Float32Array[] }
  | { kind: 'grads'; x: Float32Array; xShape: number[]; y: Float32Array; yShape: number[] }
  | { kind: 'apply'; lr: number }
  | { kind: 'predict'; x: Float32Array; xShape: number[] };

export type FromWorker =
  | { kind: 'ready'; params: number; shapes: number[][] }
  | { kind: 'attached' }
  | { kind: 'weights'; weights: Float32Array[] }
  | { kind: 'grads-done'; loss: number }
  | { kind: 'applied' }
  | { kind: 'logits'; values: Float32Array; shape: number[] }
  | { kind: 'error'; message: string };
