// The shared plugin test runner (@tricks/helper-plugin-test-runner) on this plugin: hook order, leaks, option validation.
import { assertHookOrder, assertNoLeak, assertOptionError, cleanup, runSteps, useTestBackend } from '@tricks/helper-plugin-test-runner';

describe('no-bias-decay with the shared runner', function () {
  this.timeout(120000);
  before(() => useTestBackend());

  it('taps setup and teardown, and leaks no tensor with weight decay on', async () => {
    const run = await runSteps({
      plugins: ['no-bias-decay'],
      steps: 3,
      config: { optimizer: { name: 'sgd', lr: 0.05, weightDecay: 5e-4 } },
    });
    try {
      assertHookOrder(run, 'no-bias-decay', ['setup', 'teardown']);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });

  it('validates its options', async () => {
    await assertOptionError('no-bias-decay', { bias: 'yes' }, /option "plugins\.no-bias-decay\.bias" must be boolean/);
    await assertOptionError('no-bias-decay', { norms: false }, /did you mean "norm"/);
  });
});
