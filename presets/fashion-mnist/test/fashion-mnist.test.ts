import { expect } from 'chai';
import { resolveConfig, type PresetDefinition } from '@tricks/core';
import def from '../src/index.js';

const preset = def as PresetDefinition;

describe('preset fashion-mnist', function () {
  this.timeout(120000);
  it('resolves every rung: one trick added per step, options valid', async () => {
    const keys: string[][] = [];
    for (let i = 0; i < preset.ladder!.length; i++) {
      const { config } = await resolveConfig({ preset: 'fashion-mnist', out: '/tmp/x' }, { ladderStep: i });
      keys.push(config.plugins.map((p) => p.key).sort());
      expect(config.data).to.equal('fashion-mnist');
      expect(config.schedule.name).to.equal(i >= 2 ? 'cosine' : 'constant');
    }
    expect(keys).to.deep.equal([[], ['augment'], ['augment'], ['augment', 'label-smoothing'], ['augment', 'label-smoothing', 'mixup']]);
    const { config } = await resolveConfig({ preset: 'fashion-mnist', out: '/tmp/x' });
    expect(config.plugins.find((p) => p.name === 'mixup')!.options.alpha).to.equal(0.2);
  });
});
