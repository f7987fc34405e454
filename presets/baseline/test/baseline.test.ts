import { expect } from 'chai';
import { resolveConfig } from '@tricks/core';

describe('preset baseline', function () {
  this.timeout(120000);
  it('resolves to ResNet-20, SGD momentum 0.9, step LR and standard augmentation', async () => {
    const { config } = await resolveConfig({ preset: 'baseline', data: 'cifar10:/data', out: '/tmp/x' });
    expect(config.model.name).to.equal('resnet20');
    expect(config.optimizer).to.deep.include({ name: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4 });
    expect(config.schedule).to.deep.equal({ name: 'multistep', milestones: [82, 123], gamma: 0.1 });
    expect(config.plugins.map((p) => p.key)).to.deep.equal(['augment']);
    expect(config.epochs).to.equal(164);
  });
});
