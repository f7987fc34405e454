// Resume after a signal mid-epoch: the shared interrupt-parity check (an AbortSignal, as SIGTERM, after chosen steps).
import { expect } from 'chai';
import { assertParity, assertSameFiles, interruptParity, useTestBackend } from '@tricks/helper-plugin-test-runner';

describe('class-balance resumes exactly after a signal mid-epoch', function () {
  this.timeout(240000);
  before(() => useTestBackend());

  for (const options of [
    { strategy: 'loss' },
    { strategy: 'resample' },
    { strategy: 'smote', maxPool: 40, k: 3 },
    { strategy: 'smote', space: 'embedding', maxPool: 40, k: 3 },
  ])
    it(`${JSON.stringify(options)}: stopped inside epochs 2 and 3 and resumed: the same rows and weights`, async () => {
      const p = await interruptParity({ plugins: [['class-balance', options]], epochs: 3, at: [6, 10], files: ['model/weights.bin'] });
      expect(p.logs.cut.join('\n')).to.match(/resumed from .*: epoch 2, step 2 of it/);
      assertParity(p);
      assertSameFiles(p);
    });

  // the digits are nearly balanced (weights near 1, few SMOTE rows): check that each strategy did change the run
  it('the strategies change the run (so the checks above compare something)', async () => {
    const plain = await interruptParity({ epochs: 2, at: 6 });
    for (const strategy of ['loss', 'resample', 'smote']) {
      const p = await interruptParity({ plugins: [['class-balance', { strategy }]], epochs: 2, at: 6 });
      expect(p.full[1]!.train_loss, strategy).to.not.equal(plain.full[1]!.train_loss);
    }
  });
});
