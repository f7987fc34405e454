// Resume after a signal mid-epoch: the shared interrupt-parity check (an AbortSignal, as SIGTERM, after chosen steps).
// cutmix keeps no state of its own: it draws from the run's generator (ctx.rng), which the checkpoint holds.
import { expect } from 'chai';
import { assertParity, assertSameFiles, interruptParity, useTestBackend } from '@tricks/helper-plugin-test-runner';

describe('cutmix resumes exactly after a signal mid-epoch', function () {
  this.timeout(240000);
  before(() => useTestBackend());

  it('stopped inside epochs 2 and 3 and resumed: the same draws, so the same rows and weights', async () => {
    const p = await interruptParity({ plugins: [['cutmix', { switchProb: 0.5 }]], epochs: 3, at: [6, 10], files: ['model/weights.bin'] });
    const plain = await interruptParity({ epochs: 1, at: 2 });
    expect(p.full[0]!.train_loss, 'the plugin changes the run').to.not.equal(plain.full[0]!.train_loss);
    assertParity(p);
    assertSameFiles(p);
  });
});
