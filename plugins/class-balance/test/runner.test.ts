// The shared plugin test runner (@tricks/helper-plugin-test-runner) on this plugin: hook order, leaks, option validation.
import { expect } from 'chai';
import {
  assertHookOrder,
  assertNoLeak,
  assertOptionError,
  cleanup,
  resumeParity,
  runSteps,
  useTestBackend,
} from '@tricks/helper-plugin-test-runner';

describe('class-balance with the shared runner', function () {
  this.timeout(120000);
  before(() => useTestBackend());

  it('taps setup, loss and teardown in that order (strategy loss) and leaks no tensor', async () => {
    const run = await runSteps({ plugins: ['class-balance'], steps: 3 });
    try {
      assertHookOrder(run, 'class-balance', ['setup', 'loss', 'teardown']);
      assertNoLeak(run);
    } finally {
      cleanup(run);
    }
  });

  it('validates its options', async () => {
    await assertOptionError(
      'class-balance',
      { strategy: 'oversample' },
      /option "plugins\.class-balance\.strategy" must be one of "loss", "resample", "smote"/,
    );
    await assertOptionError('class-balance', { powr: 1 }, /unknown option "plugins\.class-balance\.powr" \(did you mean "power"\?\)/);
    await assertOptionError('class-balance', { k: 0 }, /option "plugins\.class-balance\.k" must be >= 1/);
  });
});

describe('class-balance resumes (restart parity)', function () {
  this.timeout(180000);
  before(() => useTestBackend());

  it('strategy loss: the class weights come back from the checkpoint; same losses as the uninterrupted run', async () => {
    const p = await resumeParity({ plugins: [['class-balance', { strategy: 'loss' }]], epochs: 2, cut: 1 });
    expect(p.resumed).to.deep.equal(p.full);
  });

  it('strategy smote, embedding space: the pools rebuilt after epoch 1 come back from the checkpoint', async () => {
    const p = await resumeParity({
      plugins: [['class-balance', { strategy: 'smote', space: 'embedding', maxPool: 40, k: 3 }]],
      epochs: 3,
      cut: 1,
    });
    expect(p.resumed).to.have.length(3);
    expect(p.resumed).to.deep.equal(p.full);
  });
});
