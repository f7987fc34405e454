// The shared plugin test runner (@tricks/helper-plugin-test-runner) on this plugin: hook order, option validation.
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
    await assertOptionError(
      'noise-filter',
      { action: 'remove' },
      /option "plugins\.noise-filter\.action" must be one of "drop", "downweight"/,
    );
    await assertOptionError('noise-filter', { threshold: 0 }, /option "plugins\.noise-filter\.threshold" must be > 0/);
    await assertOptionError('noise-filter', { treshold: 0.2 }, /did you mean "threshold"/);
  });
});

describe('noise-filter resumes (restart parity)', function () {
  this.timeout(180000);
  before(() => useTestBackend());

  it('a run stopped after epoch 1 and resumed filters the same samples and ends with the same losses', async () => {
    // threshold 0.5 after a 1-epoch warm-up: some digits are flagged from epoch 1 on, so the checkpoint holds them
    const p = await resumeParity({ plugins: [['noise-filter', { warmup: 1, window: 1, threshold: 0.5 }]], epochs: 3, cut: 1 });
    const flagged = (lines: string[]) => lines.filter((l) => l.startsWith('noise-filter: epoch')).map((l) => /: (\d+) of/.exec(l)![1]);
    expect(flagged(p.logs.full)).to.have.length(3);
    expect(Number(flagged(p.logs.full)[0])).to.be.greaterThan(0);
    expect(flagged(p.logs.resumed)).to.deep.equal(flagged(p.logs.full).slice(1));
    expect(p.resumed).to.deep.equal(p.full);
  });
});
