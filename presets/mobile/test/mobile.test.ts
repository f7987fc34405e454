import { expect } from 'chai';
import { resolveConfig } from '@tricks/core';

describe('preset mobile', function () {
  this.timeout(120000);
  it('resolves every rung: MobileNetV3, + kd, + prune, + qat with an int8 export', async () => {
    const rungs = [];
    for (let i = 0; i < 4; i++) {
      const plugins = i >= 1 ? [['kd', { teacher: '/t' }] as [string, Record<string, unknown>]] : [];
      rungs.push((await resolveConfig({ preset: 'mobile', out: '/tmp/x', plugins }, { ladderStep: i })).config);
    }
    expect(rungs.map((c) => c.plugins.map((p) => p.key).sort())).to.deep.equal([
      ['augment'],
      ['augment', 'kd'],
      ['augment', 'kd', 'prune'],
      ['augment', 'kd', 'prune', 'qat'],
    ]);
    expect(rungs.every((c) => c.model.name === 'mobilenetv3-large')).to.equal(true);
    expect(rungs[3].export.formats).to.deep.equal(['tfjs', 'onnx-int8']);
    expect(rungs[2].export.formats).to.deep.equal(['tfjs']);
  });
});
