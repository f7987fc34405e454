// Resume after a signal mid-epoch: the shared interrupt-parity check (an AbortSignal, as SIGTERM, after chosen steps).
import { expect } from 'chai';
import { assertParity, assertSameFiles, interruptParity, useTestBackend } from '@tricks/helper-plugin-test-runner';

describe('qat resumes exactly after a signal mid-epoch', function () {
  this.timeout(240000);
  before(() => useTestBackend());

  it('observers frozen after epoch 1 and BN after epoch 2, stopped inside epochs 1, 2 and 3: the same rows and int8 model', async () => {
    const p = await interruptParity({
      plugins: [['qat', { startEpoch: 0, freezeObserversEpoch: 1, freezeBnEpoch: 2 }]],
      epochs: 3,
      at: [2, 6, 10],
      keys: ['qat'],
      files: ['model-qat/weights.bin', 'model-qat/model.json'],
    });
    expect(p.full.map((r) => r.qat)).to.deep.equal([1, 1, 1]);
    assertParity(p);
    assertSameFiles(p);
  });
});
