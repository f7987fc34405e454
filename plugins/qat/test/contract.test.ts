// The plugin contract on qat: teardown on every exit restores the layers, and the observers resume.
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { definePlugin, type PluginDefinition } from '@tricks/core';
import { cleanup, failAfterEpoch, FixtureFailure, resumeParity, runFailing, useTestBackend } from '@tricks/helper-plugin-test-runner';

type Callable = { call: unknown; name: string };
const patched = (layers: Callable[]) => layers.filter((l) => l.call !== (Object.getPrototypeOf(l) as Callable).call).map((l) => l.name);

describe('qat and the plugin contract', function () {
  this.timeout(180000);
  before(() => useTestBackend());

  it('a run that fails after epoch 1 leaves every layer with its own call again (teardown), observers freed', async () => {
    let during: string[] = [];
    const spy = definePlugin({
      name: 'test:spy',
      description: 'records the patched layers during the run',
      apply(api) {
        api.hooks.epoch.tapPromise('test:spy', async (ctx) => void (during = patched(ctx.model.layers as unknown as Callable[])));
      },
    }) as PluginDefinition;
    // the variables a failed run leaves alive (its model's), without qat and with it: the same if the observers are freed
    const variables = () => Object.keys(tf.engine().state.registeredVariables).length;
    const n = variables();
    const plain = await runFailing({ builtins: [failAfterEpoch(1)], config: { epochs: 2 } });
    const plainDelta = variables() - n;
    const m = variables();
    const run = await runFailing({ plugins: [['qat', { startEpoch: 0 }]], builtins: [spy, failAfterEpoch(1)], config: { epochs: 2 } });
    const qatDelta = variables() - m;
    try {
      expect(run.error).to.be.instanceOf(FixtureFailure);
      expect(during.length).to.be.greaterThan(0); // conv and dense layers were patched while training
      expect(patched(run.trainer.ctx.model.layers as unknown as Callable[])).to.deep.equal([]);
      expect(qatDelta).to.equal(plainDelta); // the observers' min/max variables are gone too
    } finally {
      cleanup(plain);
      cleanup(run);
    }
  });

  it('resumes with its observers: a run stopped after epoch 1 ends as the uninterrupted one', async () => {
    const p = await resumeParity({ plugins: [['qat', { startEpoch: 0 }]], epochs: 2, cut: 1 });
    expect(p.resumed).to.deep.equal(p.full);
  });
});
