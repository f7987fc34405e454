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
});
