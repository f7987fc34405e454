import { expect } from 'chai';
import { createHooks, SGD, TricksError, validate, type PluginApi, type TrainContext } from '@tricks/core';
import plugin, { scaledLr } from '../src/index.js';

const quiet = { info() {}, warn() {}, error() {}, debug() {} } as unknown as TrainContext['logger'];

describe('lr-scaling', () => {
  it('lr = base * batch / 256 (Goyal et al.: 0.1 at 256 -> 3.2 at 8192)', () => {
    expect(scaledLr(0.1, 8192)).to.be.closeTo(3.2, 1e-12);
    expect(scaledLr(0.1, 64)).to.be.closeTo(0.025, 1e-12);
    expect(scaledLr(0.1, 64, 128)).to.be.closeTo(0.05, 1e-12);
  });

  it('the setup tap scales ctx.baseLr (default reference 256) and the optimizer lr', async () => {
    const opts: Record<string, unknown> = {};
    validate(plugin.schema!, opts, 'plugin lr-scaling', 'plugins.lr-scaling');
    expect(opts).to.deep.equal({ referenceBatchSize: 256 });
    const hooks = createHooks();
    plugin.apply({ hooks, config: {} as PluginApi['config'], registerState() {} }, opts as { referenceBatchSize: number });
    const optimizer = new SGD({ lr: 0.2 });
    const ctx = { baseLr: 0.2, config: { batchSize: 32, optimizer: { lr: 0.2 } }, optimizer, logger: quiet } as unknown as TrainContext;
    await hooks.setup.promise(ctx);
    expect(ctx.baseLr).to.be.closeTo(0.025, 1e-12);
    expect(optimizer.learningRate).to.be.closeTo(0.025, 1e-12);
  });

  it('rejects a bad reference batch size', () => {
    expect(() => validate(plugin.schema!, { referenceBatchSize: 0 }, 'plugin lr-scaling', 'plugins.lr-scaling')).to.throw(
      TricksError,
      /referenceBatchSize/,
    );
  });
});
