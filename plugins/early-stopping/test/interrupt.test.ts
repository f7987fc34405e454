// Resume after a signal mid-epoch: the shared interrupt-parity check (an AbortSignal, as SIGTERM, after chosen steps).
import { expect } from 'chai';
import { assertParity, assertSameFiles, interruptParity, useTestBackend } from '@tricks/helper-plugin-test-runner';

describe('early-stopping resumes exactly after a signal mid-epoch', function () {
  this.timeout(240000);
  before(() => useTestBackend());

  it('stopped inside epoch 2, after its best epoch 1: stops after epoch 2 as the uninterrupted run, with epoch 1 weights', async () => {
    // train_loss falls every epoch, so in mode max epoch 1 stays the best: patience 1 stops after epoch 2 and
    // puts epoch 1's weights back; a resume that lost them would export epoch 2's
    const p = await interruptParity({
      plugins: [['early-stopping', { monitor: 'train_loss', mode: 'max', patience: 1 }]],
      epochs: 4,
      at: 6,
      files: ['model/weights.bin'],
    });
    expect(p.full).to.have.length(2);
    const stop = (lines: string[]) => lines.find((l) => l.startsWith('early-stopping:'));
    expect(stop(p.logs.full)).to.match(/restored the weights of epoch 1/);
    expect(stop(p.logs.resumed)).to.equal(stop(p.logs.full));
    assertParity(p);
    assertSameFiles(p);
  });
});
