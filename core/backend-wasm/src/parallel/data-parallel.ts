// Synchronous data parallelism over worker_threads: each worker holds a replica of the model on
// its own tfjs backend (single-threaded wasm by default, so N workers use N cores), computes the
// gradient of its equal share of the batch, and every replica applies the mean of all the
// workers' gradients (exchanged through one SharedArrayBuffer). The update equals the
// single-worker update on the whole batch, except that batch-norm statistics are per shard
// (as PyTorch DDP without SyncBatchNorm) and each replica keeps its own moving averages.
import { Worker } from 'node:worker_threads';
import type { FromWorker, ModelRef, SgdOptions, ToWorker, WorkerInit } from './protocol.js';

export type { ModelRef, SgdOptions } from './protocol.js';

export interface DataParallelOptions {
  model: ModelRef;
  /** Number of replicas (default 2). */
  workers?: number;
  /** tfjs backend of every replica (default 'wasm'). */
  backend?: string;
  optimizer: SgdOptions;
  /** Label smoothing of the softmax cross-entropy loss (default 0). */
  labelSmoothing?: number;
}

export interface Batch {
  /** Inputs, row-major, shape xShape = [batch, ...]. */
  x: Float32Array;
  xShape: number[];
  /** Targets (one-hot or soft labels), shape yShape = [batch, classes]. */
  y: Float32Array;
  yShape: number[];
}

class Replica {
  private pending?: { resolve: (m: FromWorker) => void; reject: (e: Error) => void };
  constructor(readonly worker: Worker) {
    worker.on('message', (m: FromWorker) => {
      const p = this.pending;
      this.pending = undefined;
      if (m.kind === 'error') p?.reject(new Error(`data-parallel worker: ${m.message}`));
      else p?.resolve(m);
    });
    worker.on('error', (e) => {
      this.pending?.reject(e);
      this.pending = undefined;
    });
  }
  /** Waits for the worker's next message (the reply to the last request). */
  next<K extends FromWorker['kind']>(kind: K): Promise<Extract<FromWorker, { kind: K }>> {
    return new Promise((resolve, reject) => {
      this.pending = {
        resolve: (m) =>
          m.kind === kind
            ? resolve(m as Extract<FromWorker, { kind: K }>)
            : reject(new Error(`data-parallel worker: expected ${kind}, got ${m.kind}`)),
        reject,
      };
    });
  }
  request<K extends FromWorker['kind']>(m: ToWorker, kind: K): Promise<Extract<FromWorker, { kind: K }>> {
    const reply = this.next(kind);
    this.worker.postMessage(m);
    return reply;
  }
}

export class DataParallel {
  private lr: number;

  private constructor(
    private readonly replicas: Replica[],
    lr: number,
    readonly params: number,
  ) {
    this.lr = lr;
  }

  /** Starts the workers, builds a replica in each and copies replica 0's initial weights to all. */
  static async create(opts: DataParallelOptions): Promise<DataParallel> {
    const n = opts.workers ?? 2;
    if (!Number.isInteger(n) || n < 1) throw new Error(`DataParallel: workers must be a positive integer, got ${n}`);
    const replicas: Replica[] = [];
    const ready: Promise<Extract<FromWorker, { kind: 'ready' }>>[] = [];
    for (let rank = 0; rank < n; rank++) {
      const init: WorkerInit = {
        model: opts.model,
        backend: opts.backend ?? 'wasm',
        optimizer: opts.optimizer,
        labelSmoothing: opts.labelSmoothing ?? 0,
        rank,
        workers: n,
      };
      const r = new Replica(
        new Worker(new URL('./worker.js', import.meta.url), {
          workerData: init,
          // one kernel thread per replica: the replicas are the parallelism here
          env: { ...process.env, TRICKS_WASM_THREADS: '1' },
        }),
      );
      replicas.push(r);
      ready.push(r.next('ready'));
    }
    try {
      const [first] = await Promise.all(ready);
      const params = first!.params;
      const grads = new SharedArrayBuffer(4 * params * n);
      await Promise.all(replicas.map((r) => r.request({ kind: 'attach', grads }, 'attached')));
      const dp = new DataParallel(replicas, opts.optimizer.lr, params);
      if (n > 1) await dp.setWeights(await dp.getWeights());
      return dp;
    } catch (e) {
      await Promise.all(replicas.map((r) => r.worker.terminate()));
      throw e;
    }
  }

  get workers(): number {
    return this.replicas.length;
  }

  /** Learning rate of the next steps (for schedules). */
  setLearningRate(lr: number): void {
    this.lr = lr;
  }

  /** One synchronous SGD step on the batch, split evenly over the workers; returns the mean loss. */
  async step(batch: Batch): Promise<number> {
    const shards = this.split(batch);
    const losses = await Promise.all(this.replicas.map((r, i) => r.request({ kind: 'grads', ...shards[i]! }, 'grads-done')));
    await Promise.all(this.replicas.map((r) => r.request({ kind: 'apply', lr: this.lr }, 'applied')));
    return losses.reduce((a, m) => a + m.loss, 0) / losses.length;
  }

  /** Inference logits of x (split over the workers), shape [batch, classes]. */
  async predict(x: Float32Array, xShape: number[]): Promise<{ values: Float32Array; shape: number[] }> {
    const shards = this.split({ x, xShape, y: new Float32Array(0), yShape: [xShape[0]!, 0] });
    const parts = await Promise.all(
      this.replicas.map((r, i) => r.request({ kind: 'predict', x: shards[i]!.x, xShape: shards[i]!.xShape }, 'logits')),
    );
    const values = new Float32Array(parts.reduce((a, p) => a + p.values.length, 0));
    let o = 0;
    for (const p of parts) {
      values.set(p.values, o);
      o += p.values.length;
    }
    return { values, shape: [xShape[0]!, ...parts[0]!.shape.slice(1)] };
  }

  /** All weights of replica 0 (trainable ones are identical on every replica). */
  async getWeights(): Promise<Float32Array[]> {
    return (await this.replicas[0]!.request({ kind: 'get-weights' }, 'weights')).weights;
  }

  async setWeights(weights: Float32Array[]): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.request({ kind: 'set-weights', weights }, 'weights')));
  }

  async dispose(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.worker.terminate()));
  }

  private split(b: Batch): Batch[] {
    const n = this.replicas.length,
      rows = b.xShape[0]!;
    if (rows % n !== 0)
      throw new Error(`DataParallel: batch size ${rows} is not a multiple of the ${n} workers; use a batch size divisible by ${n}`);
    const per = rows / n,
      xRow = b.x.length / rows,
      yRow = b.y.length / rows;
    return this.replicas.map((_, i) => ({
      x: b.x.slice(i * per * xRow, (i + 1) * per * xRow),
      xShape: [per, ...b.xShape.slice(1)],
      y: b.y.slice(i * per * yRow, (i + 1) * per * yRow),
      yShape: [per, ...b.yShape.slice(1)],
    }));
  }
}
