import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import sharp from 'sharp';
import { resizedCropInto, type CropBox } from './crop.js';

/** One item of a crop-at-decode batch: decode `file`, crop it, write float32 rows at `at` of `buffer`. */
export interface DecodeRequest {
  id: number;
  file: string;
  crop: CropBox;
  /** Output [height, width] and channels. */
  size: [number, number];
  channels: 1 | 3;
  failOn: 'none' | 'truncated' | 'error' | 'warning';
  /** The pixel map on the uint8 scale (scale 1/255, offset 0: [0, 1]). */
  scale: number[];
  offset: number[];
  buffer: SharedArrayBuffer;
  /** Element offset of the item in the buffer (a Float32Array over it). */
  at: number;
}

/** Decode (sharp, EXIF orientation honoured, sRGB or grey), then crop + resize + flip + pixel map into the buffer. */
export async function decodeCropInto(m: Omit<DecodeRequest, 'id'>): Promise<void> {
  let img = sharp(m.file, { failOn: m.failOn }).autoOrient();
  img = m.channels === 1 ? img.greyscale() : img.toColourspace('srgb');
  const { data, info } = await img.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let src: Uint8Array = data;
  if (info.channels !== m.channels) {
    // sharp keeps a grey image one-channel unless told otherwise: widen or narrow here
    const n = info.width * info.height;
    src = new Uint8Array(n * m.channels);
    for (let i = 0; i < n; i++) {
      if (m.channels === 3) src[3 * i] = src[3 * i + 1] = src[3 * i + 2] = data[i * info.channels];
      else src[i] = data[i * info.channels];
    }
  }
  const out = new Float32Array(m.buffer);
  resizedCropInto(src, info.height, info.width, m.channels, m.crop, m.size[0], m.size[1], out, m.at, m.scale, m.offset);
}

interface Slot {
  worker: Worker;
  pending: number;
}

/**
 * worker_threads for crop-at-decode: each handles many items at once (its sharp calls wait on the thread pool,
 * its JS crops run as decodes finish). Started on first use; a worker with nothing pending is unref'd, so an idle
 * pool never keeps the process alive. size 0 runs the same code on the calling thread.
 */
export class DecodePool {
  private slots: Slot[] = [];
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void; slot: Slot }>();
  private nextId = 0;

  constructor(readonly size: number) {}

  run(req: Omit<DecodeRequest, 'id'>): Promise<void> {
    if (this.size <= 0) return decodeCropInto(req);
    while (this.slots.length < this.size) this.slots.push(this.spawn());
    const slot = this.slots.reduce((a, b) => (b.pending < a.pending ? b : a));
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, slot });
      if (slot.pending++ === 0) slot.worker.ref();
      slot.worker.postMessage({ ...req, id });
    });
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./decode-worker.js', import.meta.url));
    const slot: Slot = { worker, pending: 0 };
    worker.unref();
    worker.on('message', (m: { id: number; error?: string }) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (--slot.pending === 0) worker.unref();
      if (m.error !== undefined) w.reject(new Error(m.error));
      else w.resolve();
    });
    const fail = (e: Error) => {
      // a dead worker: its items fail (the loader reports them), the next request starts a new one
      this.slots = this.slots.filter((s) => s !== slot);
      for (const [id, w] of this.waiting)
        if (w.slot === slot) {
          this.waiting.delete(id);
          w.reject(new Error(`decode worker failed: ${e.message}`));
        }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    return slot;
  }

  /** Stops the workers (the next run starts new ones). */
  async close(): Promise<void> {
    const slots = this.slots;
    this.slots = [];
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}

let shared: DecodePool | undefined;

/** The process's pool: TRICKS_DECODE_WORKERS workers, default the cores (at most 4). */
export function decodePool(): DecodePool {
  if (!shared) {
    const env = process.env.TRICKS_DECODE_WORKERS;
    const n = env !== undefined && env !== '' ? Number(env) : Math.min(4, availableParallelism());
    shared = new DecodePool(Number.isFinite(n) && n >= 0 ? Math.floor(n) : 2);
  }
  return shared;
}
