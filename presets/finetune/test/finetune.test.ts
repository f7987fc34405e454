import { expect } from 'chai';
import { resolveConfig } from '@tricks/core';

describe('preset finetune', function () {
  this.timeout(120000);
  it('resolves both rungs: finetune and augment with the ImageNet normalization, then + label smoothing', async () => {
    const rungs = [];
    for (let i = 0; i < 2; i++) rungs.push((await resolveConfig({ preset: 'finetune', out: '/tmp/x' }, { ladderStep: i })).config);
    expect(rungs.map((c) => c.plugins.map((p) => p.key).sort())).to.deep.equal([
      ['augment', 'finetune'],
      ['augment', 'finetune', 'label-smoothing'],
    ]);
    const augment = rungs[0]!.plugins.find((p) => p.key === 'augment')!;
    expect(augment.options.normalize, 'the normalization pretrained ImageNet weights expect').to.equal('imagenet');
    const ft = rungs[0]!.plugins.find((p) => p.key === 'finetune')!;
    expect(ft.options).to.include({ freezeEpochs: 1, groups: 3, lrMult: 100, bn: 'train' });
    expect(rungs[0]!.optimizer).to.include({ name: 'adamw', lr: 2e-3, weightDecay: 0.01 });
  });
});
