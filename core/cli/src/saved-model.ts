import * as tf from '@tensorflow/tfjs-core';
import { Container } from 'inversify';
import {
  coreModule,
  createHooks,
  load,
  tapOnly,
  TOKENS,
  type Batch,
  type InferenceForward,
  type Logger,
  type PluginDefinition,
  type TrainContext,
} from '@tricks/core';
import type { DeployedModel } from '@tricks/export';

/** TTA asked for on the command line: views, or 'none' to turn off the TTA a model was trained with. */
export interface TtaFlags {
  tta?: string;
  ttaMerge?: string;
  ttaPadding?: number;
}

/** How a saved model's inputs are prepared and its outputs scored, as its run's evaluation did. */
export interface SavedEvaluation {
  /** Maps a batch from the loader (x = uint8 / 255) to what the model takes. */
  transform: (b: Batch) => Batch;
  /** Log-probabilities or logits of a prepared batch (tfjs, with TTA if any, or ONNX Runtime). */
  inference: InferenceForward;
  /** The TTA options in effect, if any. */
  tta?: Record<string, unknown>;
  /** One line for the log: how inputs are prepared. */
  describe: string;
}

/**
 * An export with `inference` metadata takes raw pixels (input 'pixels', preprocessing inside) or normalized values
 * (`--raw`, x * scale + offset from 0-255): the loader's x / 255 is mapped to that. A training model (OUT/model) has
 * no such metadata: the evalBatch taps of the plugins it was trained with (normalization) are applied again, and
 * their modules bound, so that TOKENS.Inference is theirs (the tta plugin's views). `flags.tta` adds or removes tta.
 */
export async function savedEvaluation(m: DeployedModel, flags: TtaFlags, logger: Logger, numClasses: number): Promise<SavedEvaluation> {
  const tta =
    flags.tta && flags.tta !== 'none'
      ? {
          name: 'tta',
          options: {
            views: flags.tta,
            merge: flags.ttaMerge ?? 'probs',
            ...(flags.ttaPadding !== undefined ? { padding: flags.ttaPadding } : {}),
          } as Record<string, unknown>,
        }
      : undefined;
  const trained = m.meta ? [] : (m.tricks?.pluginOptions ?? []).filter((p) => !(flags.tta && p.name === 'tta'));
  const hooks = createHooks();
  const container = new Container();
  container.load(coreModule(logger));
  for (const p of [...trained, ...(tta ? [tta] : [])]) {
    const { definition } = await load<PluginDefinition>(p.name, 'plugin').catch((e: unknown) => {
      if (p === tta) throw e;
      return { definition: undefined };
    });
    if (!definition) {
      logger.warn(`plugin ${p.name} that the model was trained with is not installed; its evaluation transforms are skipped`);
      continue;
    }
    definition.apply({ hooks: tapOnly(hooks), config: {} as never, registerState: () => {} }, p.options);
    for (const mod of definition.modules?.(p.options) ?? []) await container.loadAsync(mod);
  }
  const ttaOptions = tta?.options ?? trained.find((p) => p.name === 'tta')?.options;
  const ctx = { numClasses, inputShape: m.inputShape, epoch: 0, step: 0 } as unknown as TrainContext;
  let transform = (b: Batch) => hooks.evalBatch.call(b, ctx);
  let describe = `pixels / 255${trained.length ? `, then the evaluation transforms of ${trained.map((p) => p.name).join(', ')}` : ''}`;
  if (!m.meta && !trained.length && m.normalize) {
    // a converted model (tricks convert): its metadata names the normalization its weights expect
    const { mean, std } = m.normalize;
    transform = (batch) => {
      const x = tf.tidy(() => tf.div(tf.sub(batch.x, tf.tensor1d(mean)), tf.tensor1d(std))) as tf.Tensor4D;
      batch.x.dispose();
      return { ...batch, x };
    };
    describe = `pixels / 255, then (x - mean) / std with mean ${JSON.stringify(mean)}, std ${JSON.stringify(std)} (model.json's input metadata)`;
  }
  if (m.meta) {
    const { scale, offset } = m.meta.preprocessing;
    const raw = m.meta.input === 'pixels';
    const a = raw ? [255] : scale.map((s) => s * 255);
    const b = raw ? [0] : offset;
    const channels = m.meta.channels;
    transform = (batch) => {
      // a gray image for a model that takes RGB (meta.gray: the conversion is inside): R = G = B
      const x = tf.tidy(() => {
        const y = tf.add(tf.mul(batch.x, tf.tensor1d(a)), tf.tensor1d(b)) as tf.Tensor4D;
        return y.shape[3] === channels ? y : tf.tile(y, [1, 1, 1, channels / y.shape[3]]);
      }) as tf.Tensor4D;
      batch.x.dispose();
      return { ...batch, x };
    };
    describe = raw
      ? 'pixel values 0-255 (the preprocessing is inside the model)'
      : `x * ${JSON.stringify(scale)} + ${JSON.stringify(offset)}`;
  }
  const probabilities = m.meta?.output === 'probabilities';
  const toLogits = (y: tf.Tensor2D) => (probabilities ? tf.tidy(() => tf.log(tf.maximum(y, 1e-30)) as tf.Tensor2D) : y);
  let inference: InferenceForward;
  if (m.format === 'onnx') {
    if (ttaOptions) logger.warn('test-time augmentation runs on tfjs models only; this ONNX model is scored on its plain views');
    inference = async (_model, x) => {
      const { scores, classes } = await m.run(x);
      const y = tf.tensor2d(scores, [x.shape[0], classes]);
      const out = toLogits(y);
      if (out !== y) y.dispose();
      return out;
    };
  } else {
    const base = container.get<InferenceForward>(TOKENS.Inference);
    inference = probabilities
      ? async (model, x) => {
          const y = await base(model, x);
          const out = toLogits(y);
          y.dispose();
          return out;
        }
      : base;
  }
  if (ttaOptions && m.format === 'tfjs') logger.info(`test-time augmentation: ${JSON.stringify(ttaOptions)}`);
  return { transform, inference, tta: m.format === 'tfjs' ? ttaOptions : undefined, describe };
}
