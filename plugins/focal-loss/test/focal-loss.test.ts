import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import {
  createHooks,
  crossEntropy,
  lossTerms,
  tapOnly,
  TricksError,
  validate,
  type LossState,
  type PluginApi,
  type TrainContext,
} from '@tricks/core';
import plugin, { focalLoss, type FocalLossOptions } from '../src/index.js';

interface Case {
  gamma: number;
  alpha: number | number[];
  logits: number[][];
  targets: number[][];
  weights: number[] | null;
  loss: number;
  grad: number[][];
}
const cases = JSON.parse(readFileSync(new URL('../../test/fixtures/cases.json', import.meta.url), 'utf8')) as Case[];

function close(a: ArrayLike<number>, b: number[], what: string) {
  for (let i = 0; i < b.length; i++)
    if (!(Math.abs(a[i]! - b[i]!) <= 1e-5 * Math.abs(b[i]!) + 1e-7)) throw new Error(`${what}[${i}]: ${a[i]} != ${b[i]}`);
}

describe('focal-loss against the torch formula (test/fixtures/cases.json)', () => {
  before(async () => {
    await tf.setBackend('wasm');
  });

  for (const c of cases) {
    const soft = c.targets.some((r) => r.some((v) => v > 0 && v < 1));
    it(`gamma ${c.gamma}, alpha ${JSON.stringify(c.alpha)}, ${soft ? 'soft targets' : 'hard labels'}${c.weights ? ', sample weights' : ''}: loss and gradient`, () => {
      tf.tidy(() => {
        const logits = tf.tensor2d(c.logits);
        const y = tf.tensor2d(c.targets);
        const w = c.weights ? tf.tensor1d(c.weights) : undefined;
        close(focalLoss(logits, y, c.gamma, c.alpha, w).dataSync(), [c.loss], 'loss');
        const g = tf.grad((l: tf.Tensor) => focalLoss(l as tf.Tensor2D, y, c.gamma, c.alpha, w))(logits);
        close(g.dataSync(), c.grad.flat(), 'grad');
      });
    });
  }

  it('gamma 0, alpha 1 is the cross-entropy, also for soft targets', () => {
    tf.tidy(() => {
      const c = cases.find((x) => x.weights === null && x.targets.some((r) => r.some((v) => v > 0 && v < 1)))!;
      const logits = tf.tensor2d(c.logits);
      const y = tf.tensor2d(c.targets);
      close(focalLoss(logits, y, 0, 1).dataSync(), [crossEntropy(logits, y).dataSync()[0]!], 'ce');
    });
  });

  it('the plugin replaces terms.ce with terms.focal (defaults gamma 2, alpha 1) and checks the alpha length', async () => {
    const hooks = createHooks();
    const opts: Record<string, unknown> = {};
    validate(plugin.schema!, opts, 'plugin focal-loss', 'plugins.focal-loss');
    expect(opts).to.deep.equal({ gamma: 2, alpha: 1 });
    plugin.apply({ hooks: tapOnly(hooks), config: {} as PluginApi['config'], registerState() {} }, opts as unknown as FocalLossOptions);
    const c = cases[0]!;
    expect(c.gamma).to.equal(2);
    tf.tidy(() => {
      const logits = tf.tensor2d(c.logits);
      const y = tf.tensor2d(c.targets);
      const s: LossState = {
        logits,
        targets: y,
        terms: {},
        batch: {
          x: tf.zeros([1, 1, 1, 1]) as tf.Tensor4D,
          y,
          meta: { indices: new Int32Array(), labels: new Int32Array(), epoch: 0, step: 0 },
        },
      };
      const out = hooks.loss.call(s, {} as TrainContext);
      expect(Object.keys(lossTerms(out))).to.deep.equal(['focal']); // the base term is left out (ceScale 0)
      close(out.terms.focal!.dataSync(), [c.loss], 'focal via hook');
    });
    const vec = createHooks();
    plugin.apply({ hooks: tapOnly(vec), config: {} as PluginApi['config'], registerState() {} }, { gamma: 2, alpha: [1, 2] });
    let err: unknown;
    await vec.setup.promise({ numClasses: 3 } as TrainContext).catch((e) => (err = e));
    expect(err).to.be.instanceOf(TricksError);
    expect((err as Error).message).to.match(/plugins.focal-loss.alpha.*3 classes/);
  });
});
