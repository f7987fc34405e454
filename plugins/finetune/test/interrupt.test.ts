// Resume after a signal mid-epoch: the shared interrupt-parity check (an AbortSignal, as SIGTERM, after chosen steps).
// finetune keeps no state of its own: what is frozen and the group lrs follow the epoch (set at every epoch start).
import { expect } from 'chai';
import { assertParity, assertSameFiles, interruptParity, useTestBackend } from '@tricks/helper-plugin-test-runner';

describe('finetune resumes exactly after a signal mid-epoch', function () {
  this.timeout(240000);
  before(() => useTestBackend());

  for (const bn of ['train', 'frozen'])
    it(`bn ${bn}: stopped inside the frozen epoch 1 and inside epoch 2 (unfrozen, group lrs): the same rows and weights`, async () => {
      const p = await interruptParity({
        plugins: [['finetune', { freezeEpochs: 1, head: 1, groups: 2, lrMult: 10, bn, normalize: false }]],
        config: { optimizer: { name: 'adam', lr: 0.003 } },
        epochs: 3,
        at: [2, 6],
        files: ['model/weights.bin'],
      });
      const lines = (l: string[]) => l.filter((x) => x.startsWith('finetune: epoch'));
      expect(lines(p.logs.full)).to.have.length(2); // frozen at epoch 1, everything trains from epoch 2
      expect(lines(p.logs.resumed)).to.deep.equal([lines(p.logs.full)[1]]); // the last part starts in epoch 2
      assertParity(p);
      assertSameFiles(p);
    });
});
