// Resume after a signal mid-epoch: the shared interrupt-parity check (an AbortSignal, as SIGTERM, after chosen steps).
import { expect } from 'chai';
import { assertParity, interruptParity, useTestBackend } from '@tricks/helper-plugin-test-runner';

describe('reduce-on-plateau resumes exactly after a signal mid-epoch', function () {
  this.timeout(240000);
  before(() => useTestBackend());

  it('stopped at the last step of epoch 3 (after a reduction) and inside epoch 4: the same lrs and rows', async () => {
    // train_loss falls every epoch, so in mode max every epoch after the first is bad: patience 0 halves the lr
    // after each. A stop at step 12 resumes with no step of epoch 3 left: its row must still say the lr it trained at.
    const p = await interruptParity({
      plugins: [['reduce-on-plateau', { monitor: 'train_loss', mode: 'max', patience: 0, factor: 0.5 }]],
      config: { schedule: { name: 'constant' } },
      epochs: 4,
      at: [12, 14],
    });
    expect(p.full.map((r) => r.lr)).to.deep.equal([0.05, 0.05, 0.025, 0.0125]);
    assertParity(p);
  });
});
