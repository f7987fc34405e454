// Resume after a signal mid-epoch: the shared interrupt-parity check (an AbortSignal, as SIGTERM, after chosen steps).
import { expect } from 'chai';
import { assertParity, assertSameFiles, interruptParity, useTestBackend } from '@tricks/helper-plugin-test-runner';

describe('ema resumes exactly after a signal mid-epoch', function () {
  this.timeout(240000);
  before(() => useTestBackend());

  it('stopped after steps 6 and 10 and resumed: the same EMA evaluations and the same exported EMA weights', async () => {
    const p = await interruptParity({
      plugins: [['ema', { decay: 0.9, export: 'always' }]],
      epochs: 3,
      at: [6, 10],
      keys: ['ema_val_top1', 'ema_val_loss'],
      files: ['model-ema/weights.bin'],
    });
    expect(p.full.every((r) => Number.isFinite(r.ema_val_loss) && r.ema_val_loss !== r.val_loss)).to.equal(true);
    assertParity(p);
    assertSameFiles(p);
    expect(p.logs.resumed.join('\n')).to.match(/ema: .* 12 updates/);
  });

  it('with finetune freezing the body in epoch 1 (model.weights reorders), stopped inside epochs 1 and 2: the same rows', async () => {
    // the shadow follows each weight, not its place in model.weights (which moved frozen layers last: shapes 8 and 16 met)
    const p = await interruptParity({
      plugins: [
        ['finetune', { freezeEpochs: 1, head: 1, groups: 2, normalize: false }],
        ['ema', { decay: 0.9, export: 'always' }],
      ],
      epochs: 3,
      at: [2, 6],
      keys: ['ema_val_top1', 'ema_val_loss'],
      files: ['model-ema/weights.bin', 'model/weights.bin'],
    });
    assertParity(p);
    assertSameFiles(p);
  });
});
