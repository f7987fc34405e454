// Resume after a signal mid-epoch: the shared interrupt-parity check (an AbortSignal, as SIGTERM, after chosen steps).
import { expect } from 'chai';
import { assertParity, interruptParity, useTestBackend } from '@tricks/helper-plugin-test-runner';

/** The rows of a metrics.csv without the timing columns. */
const figures = (b?: Buffer) => {
  const [head, ...rows] = String(b)
    .trim()
    .split('\n')
    .map((l) => l.split(','));
  const keep = ['epoch', 'train_loss', 'val_loss', 'val_top1', 'val_top5', 'lr'].map((k) => head!.indexOf(k));
  return [head, ...rows].map((r) => keep.map((i) => r[i]));
};

describe('csv-logger resumes exactly after a signal mid-epoch', function () {
  this.timeout(240000);
  before(() => useTestBackend());

  it('stopped inside epochs 2 and 3: one header, one row per epoch, the same figures', async () => {
    const p = await interruptParity({ plugins: ['csv-logger'], epochs: 3, at: [6, 10], files: ['metrics.csv'] });
    assertParity(p);
    const f = p.files['metrics.csv']!;
    expect(figures(f.full)).to.have.length(4);
    expect(figures(f.resumed)).to.deep.equal(figures(f.full));
  });
});
