import { Command, Option } from 'commander';
import { TricksError, ConsoleLogger, evaluateModel } from '@tricks/core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { openDeployed } from '@tricks/export';
import { cliServices } from './services.js';
import { addDataFlags, checkDataFlags, dataOptionsFromFlags, type DataFlags } from './data-options.js';
import { savedEvaluation, type TtaFlags } from './saved-model.js';
import { int } from './flags.js';

/**
 * Evaluates a saved model on a dataset's validation split: a training model (OUT/model) with the evaluation-time
 * taps (evalBatch: normalization, resizing) of the plugins it was trained with, so the numbers match the run's; an
 * export as its metadata says (raw pixels in); an ONNX export through onnxruntime-node.
 */
export async function evalCommand(
  f: {
    model: string;
    data: string;
    batchSize: number;
    backend: string;
    threads?: number;
  } & DataFlags &
    TtaFlags,
): Promise<Record<string, unknown>> {
  const logger = new ConsoleLogger();
  const services = await cliServices({ logger });
  checkDataFlags(services.datasets, f.data, f);
  const backend = await services.backend.select(f.backend);
  const data = await services.datasets.create(f.data, dataOptionsFromFlags(f));
  logger.info(`data: ${data.source}: ${data.val.length} val, ${data.val.shape.join('x')}`);
  const m = await openDeployed(f.model, { threads: f.threads });
  try {
    const inShape = m.inputShape;
    // a gray network's export takes RGB (meta.gray): savedEvaluation tiles the gray images
    const grayToRgb = (i: number) => i === 2 && m.meta?.gray !== undefined && data.val.shape[2] === 1;
    if (inShape.some((d, i) => Number.isFinite(d) && d !== data.val.shape[i] && !grayToRgb(i))) {
      const name = f.data.split(':')[0];
      const resizable = services.datasets.optionsOf(name)?.includes('size') && inShape[0] === inShape[1];
      throw new TricksError(
        `model ${f.model} takes inputs of ${inShape.join('x')}, but ${f.data} has ${data.val.shape.join('x')} images`,
        resizable
          ? `evaluate at the size the model was trained at: --image-size ${inShape[0]}`
          : 'evaluate on the kind of data the model was trained on',
      );
    }
    const ev = await savedEvaluation(m, f, logger, data.val.numClasses);
    logger.info(`model: ${m.file} (${m.format === 'onnx' ? 'onnxruntime-node' : `tfjs on ${backend}`}); inputs: ${ev.describe}`);
    const r = await evaluateModel(m.model as LayersModel, data.val, f.batchSize, ev.transform, ev.inference);
    return {
      model: f.model,
      data: data.source,
      backend: m.format === 'onnx' ? 'onnxruntime-node' : backend,
      tta: ev.tta,
      count: r.count,
      loss: r.loss,
      top1: r.top1,
      top5: r.top5,
      confusion: r.confusion,
      classNames: data.val.classNames,
    };
  } finally {
    await m.dispose();
  }
}

export function registerEvalCommand(program: Command): void {
  const cmd = program
    .command('eval')
    .description('evaluate a saved model on a dataset; prints JSON with top1, top5 and the confusion matrix')
    .requiredOption(
      '--model <dir>',
      "a model folder: a run's model/ or an export (model.json, or model.onnx: onnxruntime-node), e.g. runs/x/model",
    )
    .requiredOption('--data <spec>', 'dataset spec, e.g. digits or fashion-mnist:DIR (its validation/test split is used)');
  addDataFlags(cmd)
    .option('--batch-size <n>', 'batch size', int('--batch-size', 1), 256)
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
      int('--tta-padding', 0),
    )
    .action(async (f) => {
      process.stdout.write(`${JSON.stringify(await evalCommand(f))}\n`);
    });
}
