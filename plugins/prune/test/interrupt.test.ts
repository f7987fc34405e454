// Resume after a signal mid-epoch: the shared interrupt-parity check (an AbortSignal, as SIGTERM, after chosen steps).
import { expect } from 'chai';
import { assertParity, assertSameFiles, interruptParity, useTestBackend } from '@tricks/helper-plugin-test-runner';

describe('prune resumes exactly after a signal mid-epoch', function () {
  this.timeout(240000);
  before(() => useTestBackend());

  it('gradual: stopped between two pruning steps of the ramp and resumed: the same masks, rows and pruned model', async () => {
    // masks at steps 3, 6, 8 (the ramp's end): stops after steps 4 and 7 fall between them
    const p = await interruptParity({
      plugins: [['prune', { schedule: 'gradual', ratio: 0.5, startEpoch: 0, endEpoch: 2, frequency: 3 }]],
      epochs: 3,
      at: [4, 7],
      files: ['model-pruned/weights.bin', 'model-pruned/model.json'],
    });
    assertParity(p);
    assertSameFiles(p);
  });

  it('oneshot after epoch 1, stopped inside epoch 2: the same rows, the same accuracy before fine-tuning', async () => {
    const p = await interruptParity({
      plugins: [['prune', { schedule: 'oneshot', ratio: 0.5, epoch: 1 }]],
      epochs: 3,
      at: 6,
      keys: ['prune_top1_before_finetune'],
      files: ['model-pruned/weights.bin'],
    });
    expect(p.full[0]!.prune_top1_before_finetune).to.be.a('number');
    assertParity(p);
    assertSameFiles(p);
  });
});
