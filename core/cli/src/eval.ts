import { Command, Option } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import {
  createHooks,
  tapOnly,
  TricksError,
  ConsoleLogger,
  loadModel,
  type PluginDefinition,
  load,
  evaluateModel,
  coreModule,
  TOKENS,
  type InferenceForward,
  type TrainContext,
  type Batch,
} from '@tricks/core';
import { Container } from 'inversify';
import { cliServices } from './services.js';
import { addDataFlags, checkDataFlags, dataOptionsFromFlags, type DataFlags } from './data-options.js';

interface Meta {
  tricks?: { plugins?: string[]; pluginOptions?: { name: string; options: Record<string, unknown> }[] };
  /** An export's (tricks export): it may take 0-255 pixels and give probabilities. */
  inference?: { input: string; output: string; channels: number };
}

/**
 * Evaluates a saved model on a dataset's validation split. The evaluation-time taps (evalBatch:
 * normalization, resizing) of the plugins the model was trained with are applied again, so the
 * numbers match the run's.
 */
export async function evalCommand(
  f: {
    model: string;
    data: string;
    batchSize: number;
    backend: string;
    tta?: string;
    ttaMerge?: string;
    ttaPadding?: number;
  } & DataFlags,
): Promise<Record<string, unknown>> {
  const logger = new ConsoleLogger();
  const services = await cliServices({ logger });
  checkDataFlags(services.datasets, f.data, f);
  const backend = await services.backend.select(f.backend);
  const data = await services.datasets.create(f.data, dataOptionsFromFlags(f));
  logger.info(`data: ${data.source}: ${data.val.length} val, ${data.val.shape.join('x')}`);
  const model = await loadModel(f.model);
  const inShape = model.inputs[0].shape.slice(1);
  if (inShape.some((d, i) => d !== null && d !== data.val.shape[i])) {
    const name = f.data.split(':')[0];
    const resizable = services.datasets.optionsOf(name)?.includes('size') && inShape[0] === inShape[1] && inShape[0] !== null;
    model.dispose();
    throw new TricksError(
      `model ${f.model} takes inputs of ${inShape.join('x')}, but ${f.data} has ${data.val.shape.join('x')} images`,
      resizable
        ? `evaluate at the size the model was trained at: --image-size ${inShape[0]}`
        : 'evaluate on the kind of data the model was trained on',
    );
  }
  const meta = (model.getUserDefinedMetadata() ?? {}) as Meta;
  // The plugins the model was trained with tap a fresh set of hooks; only evalBatch is called.
  const hooks = createHooks();
  // Their modules too, for the services evaluation uses (TOKENS.Inference: the tta plugin's views).
  const container = new Container();
  container.load(coreModule(logger));
  const trained = (meta.tricks?.pluginOptions ?? []).filter((p) => !(f.tta && p.name === 'tta'));
  const tta =
    f.tta && f.tta !== 'none'
      ? [
          {
            name: 'tta',
            options: { views: f.tta, merge: f.ttaMerge ?? 'probs', ...(f.ttaPadding !== undefined ? { padding: f.ttaPadding } : {}) },
          },
        ]
      : [];
  for (const p of [...trained, ...tta]) {
    const { definition } = await load<PluginDefinition>(p.name, 'plugin').catch((e: unknown) => {
      if (p === tta[0]) throw e;
      return { definition: undefined };
    });
    if (!definition) {
      logger.warn(`plugin ${p.name} that the model was trained with is not installed; its evaluation transforms are skipped`);
      continue;
    }
    definition.apply({ hooks: tapOnly(hooks), config: {} as never, registerState: () => {} }, p.options);
    for (const m of definition.modules?.(p.options) ?? []) await container.loadAsync(m);
  }
  const inference = container.get<InferenceForward>(TOKENS.Inference);
  if (tta.length || trained.some((p) => p.name === 'tta'))
    logger.info(`test-time augmentation: ${JSON.stringify((tta[0] ?? trained.find((p) => p.name === 'tta'))!.options)}`);
  const ctx = { numClasses: data.val.numClasses, inputShape: data.val.shape, epoch: 0, step: 0 } as unknown as TrainContext;
  // an export with the preprocessing inside takes the images' own 0-255 values (gray tiled to RGB), not the taps'
  const inf = meta.inference;
  const pixels = (x: tf.Tensor4D) => {
    const p = tf.round(tf.mul(x, 255)) as tf.Tensor4D;
    return p.shape[3] === inf!.channels ? p : tf.tile(p, [1, 1, 1, inf!.channels / p.shape[3]]);
  };
  const transform = inf?.input === 'pixels' ? (b: Batch) => ({ ...b, x: pixels(b.x) }) : (b: Batch) => hooks.evalBatch.call(b, ctx);
  // probabilities as logits for the loss: softmax(log p) = p
  const forward: InferenceForward =
    inf?.output === 'probabilities' ? (m, x) => tf.log(tf.maximum(inference(m, x), 1e-30)) as tf.Tensor2D : inference;
  const r = await evaluateModel(model, data.val, f.batchSize, transform, forward);
  model.dispose();
  return {
    model: f.model,
    data: data.source,
    backend,
    tta: (tta[0] ?? trained.find((p) => p.name === 'tta'))?.options,
    count: r.count,
    loss: r.loss,
    top1: r.top1,
    top5: r.top5,
    confusion: r.confusion,
    classNames: data.val.classNames,
  };
}

export function registerEvalCommand(program: Command): void {
  const cmd = program
    .command('eval')
    .description('evaluate a saved model on a dataset; prints JSON with top1, top5 and the confusion matrix')
    .requiredOption('--model <dir>', 'a model directory (model.json + weights), e.g. runs/x/model')
    .requiredOption('--data <spec>', 'dataset spec, e.g. digits or fashion-mnist:DIR (its validation/test split is used)');
  addDataFlags(cmd)
    .option('--batch-size <n>', 'batch size', (v) => Number(v), 256)
    .addOption(
      new Option('--backend <name>', 'tfjs backend').choices(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']).default('auto'),
    )
    .addOption(
      new Option(
        '--tta <views>',
        'test-time augmentation (the tta plugin): average over the image and its mirror, or torchvision five/ten crops; none turns off the TTA a model was trained with',
      ).choices(['none', 'flip', 'five-crop', 'ten-crop']),
    )
    .addOption(
      new Option('--tta-merge <how>', "merge the views' softmax probabilities (fastai) or their logits").choices(['probs', 'logits']),
    )
    .option(
      '--tta-padding <n>',
      'five/ten crops from the image zero-padded by n pixels (its shifts, as pad-crop trains), not resized',
      (v) => Number(v),
    )
    .action(async (f) => {
      process.stdout.write(`${JSON.stringify(await evalCommand(f))}\n`);
    });
}
