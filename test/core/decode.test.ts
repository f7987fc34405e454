import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { InMemoryDataset, itemRng, loadBatches, toBatch, type BatchOptions, type Dataset, type RawBatch } from '@tricks/core';

/** An in-memory dataset that says it crops while decoding, and records what the loader asked. */
class Recording implements Dataset {
  readonly name = 'rec';
  readonly shape: [number, number, number] = [2, 2, 1];
  readonly numClasses = 2;
  readonly labels = new Int32Array(10);
  readonly length = 10;
  readonly decodeCrop = true;
  readonly asked: { indices: number[]; crops: string[]; into?: number }[] = [];
  async getBatch(indices: ArrayLike<number>, options?: BatchOptions): Promise<RawBatch> {
    const crops = Array.from(indices, (_, k) => JSON.stringify(options?.crop?.(k, 30, 40)));
    this.asked.push({ indices: Array.from(indices), crops, into: options?.into?.length });
    return { images: new Uint8Array(indices.length * 4), labels: new Int32Array(indices.length) };
  }
}

describe('the decode plan in core: item generators, the loader, toBatch', () => {
  before(async () => {
    await tf.setBackend('wasm');
  });

  it('draws each item from itemRng(seed, epoch, place): the same draws from any starting batch, another epoch differs', async () => {
    const draw = (h: number, w: number, rng: { int(n: number): number; next(): number }) => ({
      top: rng.int(h),
      left: rng.int(w),
      height: 1,
      width: 1,
      flip: rng.next() < 0.5,
    });
    const order = Int32Array.from([3, 1, 4, 0, 5, 9, 2, 6]);
    const run = async (from: number, prefetch: number, epoch = 0) => {
      const ds = new Recording();
      for await (const b of loadBatches(ds, order, 2, { from, prefetch, crop: { crop: draw, seed: 11, epoch } })) void b;
      return ds.asked;
    };
    const all = await run(0, 2),
      resumed = await run(2, 1),
      deep = await run(0, 4);
    expect(resumed.map((a) => a.crops)).to.deep.equal(all.slice(2).map((a) => a.crops));
    expect(deep.map((a) => a.crops)).to.deep.equal(all.map((a) => a.crops));
    expect((await run(0, 2, 1)).map((a) => a.crops)).to.not.deep.equal(all.map((a) => a.crops));
    expect(all[0].into, 'a ring buffer for the batch').to.equal(2 * 4);
    // the generator is a function of (seed, epoch, place) alone
    expect(itemRng(11, 0, 5).next()).to.equal(itemRng(11, 0, 5).next());
    expect(itemRng(11, 0, 5).next()).to.not.equal(itemRng(11, 0, 6).next());
    // a dataset that cannot crop while decoding is not asked to
    const plain = new InMemoryDataset('m', new Uint8Array(40), new Int32Array(10), [2, 2, 1], 2);
    for await (const b of loadBatches(plain, order, 2, { crop: { crop: draw, seed: 1, epoch: 0 } })) expect(b.cropped).to.equal(undefined);
  });

  it("toBatch maps uint8 with the plan's pixels in its one pass (Normalize folded in), takes floats made while decoding as they are", () => {
    const images = Uint8Array.from({ length: 2 * 2 * 2 * 3 }, (_, i) => (i * 31) & 255);
    const raw = { images, labels: Int32Array.from([0, 1]), indices: Int32Array.from([0, 1]) };
    const mean = [0.485, 0.456, 0.406],
      std = [0.229, 0.224, 0.225];
    const plan = { pixels: { owner: 'p', scale: std.map((s) => 1 / (255 * s)), offset: mean.map((m, i) => -m / std[i]) } };
    tf.tidy(() => {
      const plain = toBatch(raw, [2, 2, 3], 2);
      expect(plain.meta.decoded).to.equal(undefined);
      const want = tf.div(tf.sub(plain.x, mean), std);
      const folded = toBatch(raw, [2, 2, 3], 2, 0, 0, plan);
      expect(folded.meta.decoded).to.deep.equal({ pixels: 'p' });
      expect(tf.max(tf.abs(tf.sub(folded.x, want))).dataSync()[0]).to.be.below(1e-5);
      const floats = Float32Array.from({ length: images.length }, (_, i) => i / 10);
      const made = toBatch({ ...raw, images: new Uint8Array(0), floats, cropped: true }, [2, 2, 3], 2, 0, 0, {
        ...plan,
        crop: { owner: 'c', draw: () => ({ top: 0, left: 0, height: 1, width: 1, flip: false }) },
      });
      expect(made.meta.decoded).to.deep.equal({ cropped: 'c', pixels: 'p' });
      expect(Array.from(made.x.dataSync())).to.deep.equal(Array.from(floats));
      expect(() => toBatch(raw, [2, 2, 3], 2, 0, 0, { pixels: { owner: 'p', scale: [1], offset: [0] } })).to.throw(/1 scales/);
    });
  });
});
