import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { expect } from 'chai';
import { createHooks, lossTerms, tapOnly, TricksError, validate, type LossState, type PluginApi, type TrainContext } from '@tricks/core';
import plugin, { smoothLoss, smoothTargets } from '../src/index.js';

interface Case {
  epsilon: number;
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

const state = (c: Case): LossState => {
  const logits = tf.tensor2d(c.logits);
  const y = tf.tensor2d(c.targets);
  const sampleWeights = c.weights ? tf.tensor1d(c.weights) : undefined;
  const batch = {
    x: tf.zeros([c.logits.length, 1, 1, 1]) as tf.Tensor4D,
    y,
    meta: { indices: new Int32Array(), labels: new Int32Array(), epoch: 0, step: 0, sampleWeights },
  };
  return { logits, batch, targets: y, sampleWeights, terms: {} };
};

describe('label-smoothing against PyTorch cross_entropy(label_smoothing=eps) (test/fixtures/cases.json)', () => {
  before(async () => {
    await tf.setBackend('wasm');
  });

  for (const c of cases) {
    const kind = `${c.targets.some((r) => r.some((v) => v > 0 && v < 1)) ? 'soft (mixup) targets' : 'hard labels'}${c.weights ? ', sample weights' : ''}`;
    it(`eps ${c.epsilon}, ${c.logits.length}x${c.logits[0]!.length}, ${kind}: loss and gradient`, () => {
      tf.tidy(() => {
        const s = state(c);
        const out = smoothLoss(s, c.epsilon);
        // the trainer's base loss (cross-entropy by default) from the smoothed targets, after the taps
        close(lossTerms(out).ce!.dataSync(), [c.loss], 'loss');
        const g = tf.grad((l: tf.Tensor) => lossTerms(smoothLoss({ ...s, logits: l as tf.Tensor2D }, c.epsilon)).ce!)(s.logits);
        close(g.dataSync(), c.grad.flat(), 'grad');
      });
    });
  }

  it('the plugin taps the loss hook with validated defaults (eps 0.1) and rewrites targets and ce', () => {
    const hooks = createHooks();
    const opts: Record<string, unknown> = {};
    validate(plugin.schema!, opts, 'plugin label-smoothing', 'plugins.label-smoothing');
    expect(opts.epsilon).to.equal(0.1);
    plugin.apply({ hooks: tapOnly(hooks), config: {} as PluginApi['config'], registerState() {} }, opts as { epsilon: number });
    const c = cases.find((x) => x.epsilon === 0.1 && !x.weights)!;
    tf.tidy(() => {
      const out = hooks.loss.call(state(c), {} as TrainContext);
      close(lossTerms(out).ce!.dataSync(), [c.loss], 'loss via hook');
      close(out.targets.dataSync(), (smoothTargets(tf.tensor2d(c.targets), 0.1).arraySync() as number[][]).flat(), 'targets');
      expect(tf.sum(out.targets, -1).arraySync() as number[]).to.satisfy((r: number[]) => r.every((v) => Math.abs(v - 1) < 1e-6));
    });
  });

  it('rejects epsilon outside [0, 1) with the option path', () => {
    expect(() => validate(plugin.schema!, { epsilon: 1 }, 'plugin label-smoothing', 'plugins.label-smoothing')).to.throw(
      TricksError,
      /plugins.label-smoothing.epsilon/,
    );
    expect(() => validate(plugin.schema!, { epsilo: 0.1 }, 'plugin label-smoothing', 'plugins.label-smoothing')).to.throw(
      TricksError,
      /did you mean "epsilon"/,
    );
  });
});
