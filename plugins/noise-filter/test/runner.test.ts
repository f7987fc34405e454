// The shared plugin test runner (@tricks/helper-plugin-test-runner) on this plugin: hook order, option validation.
import { assertHookOrder, assertNoLeak, assertOptionError, cleanup, runSteps, useTestBackend } from '@tricks/helper-plugin-test-runner';

describe('noise-filter with the shared runner', function () {
  this.timeout(120000);
  before(() => useTestBackend());

  it('taps setup, loss, epoch and teardown in that order, and leaks no tensor during warm-up', async () => {
    const run = await runSteps({ plugins: [['noise-filter', { warmup: 2 }]], steps: 3 });
    try {
      assertHookOrder(run, 'noise-filter', ['setup', 'loss', 'epoch', 'teardown']);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });

  it('validates its options', async () => {
    await assertOptionError('noise-filter', { action: 'remove' }, /option "plugins\.noise-filter\.action" must be one of "drop", "downweight"/);
    await assertOptionError('noise-filter', { threshold: 0 }, /option "plugins\.noise-filter\.threshold" must be > 0/);
    await assertOptionError('noise-filter', { treshold: 0.2 }, /did you mean "threshold"/);
  });
});
