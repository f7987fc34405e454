// Resume after a signal mid-epoch: the shared interrupt-parity check (an AbortSignal, as SIGTERM, after chosen steps).
import { expect } from 'chai';
import { assertParity, assertSameFiles, interruptParity, useTestBackend } from '@tricks/helper-plugin-test-runner';

const flagged = (lines: string[]) => lines.filter((l) => l.startsWith('noise-filter: epoch')).map((l) => Number(/: (\d+) of/.exec(l)![1]));

describe('noise-filter resumes exactly after a signal mid-epoch', function () {
  this.timeout(240000);
  before(() => useTestBackend());

  // 4 steps an epoch: a stop after step 6 lands in epoch 2 (with samples dropped since epoch 1), the next after
  // step 8 at its last step, before its evaluation; the third after step 10, inside epoch 3
  it('stopped after steps 6, 8 and 10 and resumed each time: the same rows, the same samples dropped, the same report and weights', async () => {
    const p = await interruptParity({
      plugins: [['noise-filter', { warmup: 1, window: 1, threshold: 0.5 }]],
      epochs: 3,
      at: [6, 8, 10],
      files: ['noise-report.csv', 'noise-report.json', 'model/weights.bin'],
    });
    expect(flagged(p.logs.full)).to.have.length(3);
    expect(flagged(p.logs.full)[0]).to.be.greaterThan(0);
    expect([...flagged(p.logs.cut), ...flagged(p.logs.resumed)]).to.deep.equal(flagged(p.logs.full));
    assertParity(p);
    assertSameFiles(p);
  });

  it('downweight with DBSCAN outliers (use either), stopped inside epoch 3: the same rows and report', async () => {
    const p = await interruptParity({
      plugins: [
        [
          'noise-filter',
          { warmup: 1, window: 2, threshold: 0.3, action: 'downweight', use: 'either', dbscan: { minPts: 3, maxPerClass: 10 } },
        ],
      ],
      epochs: 3,
      at: 10,
      files: ['noise-report.csv', 'model/weights.bin'],
    });
    expect(flagged(p.logs.full).at(-1)).to.be.greaterThan(0);
    assertParity(p);
    assertSameFiles(p);
  });
});
