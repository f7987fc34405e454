import { expect } from 'chai';
import { resolveConfig } from '@tricks/core';

describe('preset bag-of-tricks-resnet50', function () {
  this.timeout(120000);
  it('resolves every rung: ResNet-50 -> ResNet-50-D, lr scaling, zero-gamma, no bias decay, cosine + warm-up, label smoothing, mixup, kd', async () => {
    const rungs = [];
    for (let i = 0; i < 8; i++) {
      const plugins = i === 7 ? [['kd', { teacher: '/t' }] as [string, Record<string, unknown>]] : [];
      rungs.push((await resolveConfig({ preset: 'bag-of-tricks-resnet50', out: '/tmp/x', plugins }, { ladderStep: i })).config);
    }
    expect(rungs.map((c) => c.model.name)).to.deep.equal([
      'resnet50',
      'resnet50-d',
      'resnet50-d',
      'resnet50-d',
      'resnet50-d',
      'resnet50-d',
      'resnet50-d',
      'resnet50-d',
    ]);
    expect(rungs.map((c) => Boolean(c.model.options?.zeroGamma))).to.deep.equal([false, false, false, true, true, true, true, true]);
    expect(rungs.map((c) => c.batchSize)).to.deep.equal([256, 256, 1024, 1024, 1024, 1024, 1024, 1024]);
    expect(rungs[4].schedule).to.deep.equal({ name: 'cosine', warmupEpochs: 5 });
    expect(rungs[3].schedule.name).to.equal('multistep');
    expect(rungs.map((c) => c.epochs)).to.deep.equal([120, 120, 120, 120, 120, 120, 200, 200]);
    expect(rungs[7].plugins.map((p) => p.key).sort()).to.deep.equal([
      'augment',
      'kd',
      'label-smoothing',
      'lr-scaling',
      'mixup',
      'no-bias-decay',
    ]);
    expect(rungs[7].plugins.find((p) => p.name === 'mixup')!.options.alpha).to.equal(0.2);
    expect(rungs[7].plugins.find((p) => p.name === 'label-smoothing')!.options.epsilon).to.equal(0.1);
  });
});
