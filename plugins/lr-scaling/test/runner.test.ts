// The shared plugin test runner (@tricks/helper-plugin-test-runner) on this plugin: hook order, leaks, option validation.
import { assertHookOrder, assertNoLeak, assertOptionError, cleanup, runSteps, useTestBackend } from '@tricks/helper-plugin-test-runner';

describe('lr-scaling with the shared runner', function () {
  this.timeout(120000);
  before(() => useTestBackend());

  it('taps setup only, and leaks no tensor', async () => {
    const run = await runSteps({ plugins: [['lr-scaling', { referenceBatchSize: 64 }]], steps: 3 });
    try {
      assertHookOrder(run, 'lr-scaling', ['setup']);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });

  it('validates its options', async () => {
    await assertOptionError('lr-scaling', { referenceBatchSize: 0 }, /option "plugins\.lr-scaling\.referenceBatchSize" must be >= 1/);
    await assertOptionError('lr-scaling', { referenceBatchSize: 2.5 }, /referenceBatchSize" must be integer/);
    await assertOptionError('lr-scaling', { batchSize: 256 }, /unknown option "plugins\.lr-scaling\.batchSize"/);
  });
});
