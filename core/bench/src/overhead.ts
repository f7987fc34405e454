// Framework overhead: the trainer with six no-op plugins against a bare tfjs loop, same model, same
// data, same optimizer, same number of steps, on the current backend. Both read the loss back every
// step, as the trainer does (it checks it is finite before the update).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadDigits } from '@tricks/data';
import { createStandardTrainer } from '@tricks/lab';
import { MemoryLogger, crossEntropy, ModelRegistry, SGD, toBatch, Rng, withSeededMathRandom } from '@tricks/core';

const NOOP_PLUGINS = [
  ['batch', 'sync'],
  ['loss', 'sync'],
  ['step', 'sync'],
  ['evalBatch', 'sync'],
  ['epoch', 'promise'],
  ['setup', 'promise'],
] as const;

export interface OverheadResult {
  bareImagesPerSec: number;
  trainerImagesPerSec: number;
  /** trainer / bare: 1 means no overhead. */
  ratio: number;
  steps: number;
  batchSize: number;
}

/** Six plugin files, each tapping one hook with a no-op (every tap also touches the context). */
function writeNoopPlugins(dir: string): string[] {
  return NOOP_PLUGINS.map(([hook, kind], i) => {
    const file = join(dir, `noop${i}.mjs`);
    const body =
      kind === 'sync'
        ? `api.hooks.${hook}.tap('noop${i}', (v, ctx) => { void ctx; return v; });`
        : `api.hooks.${hook}.tapPromise('noop${i}', async () => {});`;
    writeFileSync(file, `export default { name: 'noop${i}', description: 'no-op', apply(api) { ${body} } };\n`);
    return file;
  });
}

export async function benchOverhead(
  opts: { steps?: number; batchSize?: number; repeats?: number; backend?: string } = {},
): Promise<OverheadResult> {
  const steps = opts.steps ?? 60,
    batchSize = opts.batchSize ?? 64,
    repeats = opts.repeats ?? 3;
  const data = loadDigits().train;
  const dir = mkdtempSync(join(tmpdir(), 'tricks-overhead-'));
  const plugins = writeNoopPlugins(dir);
  const spec = { inputShape: data.shape, numClasses: data.numClasses, options: { width: 32 } };
  let bare = 0,
    trainer = 0;
  try {
    for (let r = 0; r < repeats; r++) {
      // Bare loop: the same batches in the same order, no hooks, no trainer.
      const model = withSeededMathRandom(new Rng(1), () => new ModelRegistry().build('small-cnn', spec));
      const opt = new SGD({ lr: 0.05, momentum: 0.9, nesterov: true });
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const order = new Rng(r).permutation(data.length);
      const t0 = performance.now();
      for (let s = 0; s < steps; s++) {
        const raw = await data.getBatch(order.subarray(s * batchSize, (s + 1) * batchSize));
        tf.tidy(() => {
          const b = toBatch({ ...raw, indices: order.subarray(s * batchSize, (s + 1) * batchSize) }, data.shape, data.numClasses);
          const { value, grads } = tf.variableGrads(() => crossEntropy(model.apply(b.x, { training: true }) as tf.Tensor2D, b.y), vars);
          value.dataSync();
          opt.applyGradients(grads);
        });
      }
      bare = Math.max(bare, (steps * batchSize) / ((performance.now() - t0) / 1000));
      model.dispose();
      opt.dispose();

      const t = await createStandardTrainer(
        {
          data: 'digits',
          model: { name: 'small-cnn', options: { width: 32 } },
          epochs: 1,
          batchSize,
          checkpoint: false,
          optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true },
          limit: { steps, val: 64 },
          backend: opts.backend ?? 'wasm',
          export: { formats: [] },
          plugins,
          out: join(dir, `run${r}`),
          seed: r,
        },
        { logger: new MemoryLogger() },
      );
      const result = await t.run();
      trainer = Math.max(trainer, result.epochs[0].images_per_sec);
      t.ctx.model.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { bareImagesPerSec: bare, trainerImagesPerSec: trainer, ratio: trainer / bare, steps, batchSize };
}
