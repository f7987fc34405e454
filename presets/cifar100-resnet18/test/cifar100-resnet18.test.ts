import { expect } from 'chai';
import { resolveConfig } from '@tricks/core';

describe('preset cifar100-resnet18', function () {
  this.timeout(120000);
  it('resolves every rung of the ladder with the published hyper-parameters', async () => {
    const rungs = [];
    for (let i = 0; i < 5; i++) {
      // kd needs a teacher; the ablation fills it in, here a user entry does
      const plugins = i === 4 ? [['kd', { teacher: '/t' }] as [string, Record<string, unknown>]] : [];
      rungs.push((await resolveConfig({ preset: 'cifar100-resnet18', out: '/tmp/x', plugins }, { ladderStep: i })).config);
    }
    expect(rungs.map((c) => c.plugins.map((p) => p.key).sort())).to.deep.equal([
      ['augment'],
      ['augment', 'autoaugment'],
      ['augment', 'autoaugment', 'se-block'],
      ['augment', 'autoaugment', 'label-smoothing', 'se-block'],
      ['augment', 'autoaugment', 'kd', 'label-smoothing', 'se-block'],
    ]);
    for (const c of rungs) {
      expect(c.model.name).to.equal('resnet18-cifar');
      expect(c.optimizer).to.deep.include({ name: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
      expect(c.batchSize).to.equal(128);
      expect(c.epochs).to.equal(200);
    }
    expect(rungs.map((c) => c.schedule.name)).to.deep.equal(['multistep', 'multistep', 'multistep', 'cosine', 'cosine']);
    const kd = rungs[4].plugins.find((p) => p.name === 'kd')!;
    expect(kd.options).to.deep.include({ teacher: '/t', temperature: 4, alpha: 0.9 });
    expect(rungs[3].plugins.find((p) => p.name === 'label-smoothing')!.options.epsilon).to.equal(0.1);
  });

  it('without a teacher, the distillation rung fails with the option named', async () => {
    const err = await resolveConfig({ preset: 'cifar100-resnet18', out: '/tmp/x' }).catch((e) => e);
    expect(String(err.message))
      .to.match(/kd/)
      .and.to.match(/teacher/);
  });
});
