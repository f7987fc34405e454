// The shared plugin test runner (@tricks/helper-plugin-test-runner) on this plugin: hook order, option validation.
import { expect } from 'chai';
import { assertHookOrder, assertOptionError, cleanup, resumeParity, runSteps, useTestBackend } from '@tricks/helper-plugin-test-runner';

describe('ema with the shared runner', function () {
  this.timeout(120000);
  before(() => useTestBackend());

  it('taps setup, step, epoch, export and teardown in that order', async () => {
    const run = await runSteps({ plugins: [['ema', { decay: 0.9, export: 'always' }]], steps: 3 });
    try {
      assertHookOrder(run, 'ema', ['setup', 'step', 'epoch', 'export', 'teardown']);
    } finally {
      cleanup(run);
    }
  });

  it('validates its options', async () => {
    await assertOptionError('ema', { decay: 1 }, /option "plugins\.ema\.decay" must be < 1/);
    await assertOptionError('ema', { export: 'sometimes' }, /option "plugins\.ema\.export" must be one of "better", "always", "never"/);
    await assertOptionError('ema', { decy: 0.99 }, /did you mean "decay"/);
  });
});

describe('ema resumes (restart parity)', function () {
  this.timeout(180000);
  before(() => useTestBackend());

  it('the shadow weights and update count come back: the EMA evaluations match the uninterrupted run', async () => {
    const p = await resumeParity({ plugins: [['ema', { decay: 0.9 }]], epochs: 3, cut: 1, keys: ['ema_val_top1', 'ema_val_loss'] });
    expect(p.full[2]).to.have.property('ema_val_loss');
    expect(p.resumed).to.deep.equal(p.full);
  });
});
