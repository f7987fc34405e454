// The shared plugin test runner (@tricks/helper-plugin-test-runner) on this plugin: hook order, option validation.
import { assertHookOrder, assertOptionError, cleanup, runSteps, useTestBackend } from '@tricks/helper-plugin-test-runner';

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
