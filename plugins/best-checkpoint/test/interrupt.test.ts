// Resume after a signal mid-epoch: the shared interrupt-parity check (an AbortSignal, as SIGTERM, after chosen steps).
import { expect } from 'chai';
import { assertParity, assertSameFiles, interruptParity, useTestBackend } from '@tricks/helper-plugin-test-runner';

describe('best-checkpoint resumes exactly after a signal mid-epoch', function () {
  this.timeout(240000);
  before(() => useTestBackend());

  it('topK 2, stopped inside epochs 2 and 3: the same best model, the same kept epochs and history', async () => {
    const p = await interruptParity({
      plugins: [['best-checkpoint', { monitor: 'val_loss', mode: 'min', topK: 2 }]],
      epochs: 3,
      at: [6, 10],
      files: [
        'model-best/weights.bin',
        'model-best/best.json',
        'top-k/epoch-002/weights.bin',
        'top-k/epoch-003/weights.bin',
        'top-k/epoch-001/weights.bin',
      ],
    });
    assertParity(p);
    const best = (b?: Buffer) => {
      const { metrics: _m, ...rest } = JSON.parse(String(b));
      return rest; // the metrics row it copies holds the epoch's timings
    };
    expect(best(p.files['model-best/best.json']!.resumed)).to.deep.equal(best(p.files['model-best/best.json']!.full));
    expect(best(p.files['model-best/best.json']!.full).history).to.have.length(3);
    const kept = best(p.files['model-best/best.json']!.full)
      .kept.map((e: { epoch: number }) => e.epoch)
      .sort();
    assertSameFiles(p, ['model-best/weights.bin', ...kept.map((e: number) => `top-k/epoch-00${e}/weights.bin`)]);
    for (const e of [1, 2, 3].filter((e) => !kept.includes(e))) {
      const f = p.files[`top-k/epoch-00${e}/weights.bin`]!;
      expect([f.full, f.resumed], `epoch ${e} dropped from the top 2`).to.deep.equal([undefined, undefined]);
    }
  });
});
