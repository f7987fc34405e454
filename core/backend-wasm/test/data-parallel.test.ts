// DataParallel: two replicas each on half the batch must take the same SGD step as one replica
// on the whole batch (for a model without batch norm), and keep their weights in sync.
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { DataParallel } from '../src/parallel/index.js';

const model = { module: fileURLToPath(new URL('./fixtures/data-parallel-model.js', import.meta.url)), export: 'tinyConvNet' };
const optimizer = { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 };

function batch(seed: number, rows: number) {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const x = Float32Array.from({ length: rows * 8 * 8 * 8 }, rand);
  const y = new Float32Array(rows * 3);
  for (let i = 0; i < rows; i++) y[i * 3 + (i % 3)] = 1;
  return { x, xShape: [rows, 8, 8, 8], y, yShape: [rows, 3] };
}

describe('DataParallel', function () {
  this.timeout(60000);
  let one: DataParallel, two: DataParallel;

  before(async () => {
    [one, two] = await Promise.all([
      DataParallel.create({ model, workers: 1, optimizer }),
      DataParallel.create({ model, workers: 2, optimizer }),
    ]);
    await one.setWeights(await two.getWeights());
  });
  after(async () => {
    await Promise.all([one?.dispose(), two?.dispose()]);
  });

  it('two workers on half batches step as one worker on the whole batch', async () => {
    for (let step = 0; step < 3; step++) {
      const b = batch(step + 1, 6);
      const [l1, l2] = [await one.step(b), await two.step(b)];
      expect(Math.abs(l1 - l2), `loss at step ${step}`).to.be.below(1e-5);
    }
    const [w1, w2] = [await one.getWeights(), await two.getWeights()];
    expect(w2.length).to.equal(w1.length);
    w1.forEach((w, i) => {
      const diff = Math.max(...w.map((v, j) => Math.abs(v - w2[i]![j]!)));
      expect(diff, `weight ${i}`).to.be.below(1e-5);
    });
  });

  it('names the problem when the batch does not split evenly', async () => {
    let err: Error | undefined;
    await two.step(batch(9, 5)).catch((e: Error) => {
      err = e;
    });
    expect(err?.message).to.match(/batch size 5 is not a multiple of the 2 workers/);
  });
});
