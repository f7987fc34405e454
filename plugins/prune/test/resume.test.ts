import { expect } from 'chai';
import { resumeParity, useTestBackend } from '@tricks/helper-plugin-test-runner';

describe('prune resumes (restart parity)', function () {
  this.timeout(240000);
  before(() => useTestBackend());

  it('gradual pruning stopped after epoch 1 and resumed ends as the uninterrupted run (schedule progress and plan come back)', async () => {
    const p = await resumeParity({
      plugins: [['prune', { schedule: 'gradual', ratio: 0.5, startEpoch: 0, endEpoch: 2, frequency: 2 }]],
      epochs: 3,
      cut: 1,
    });
    expect(p.resumed).to.deep.equal(p.full);
  });
});
