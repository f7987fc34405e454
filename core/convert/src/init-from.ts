import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { definePlugin, loadModel, TricksError, type TrainContext } from '@tricks/core';
import { convertCheckpoint, readCheckpoint } from './convert.js';
import { sourceModel } from './names.js';
import { fetchPretrained } from './pretrained.js';

const NAME = 'tricks:init-from';

/** A download's progress: a bar redrawn in place on a terminal, a line at each quarter otherwise. */
function progress(ctx: TrainContext) {
  let shown = -1;
  return (done: number, total: number) => {
    const pct = total ? Math.floor((100 * done) / total) : 0;
    const text = `pretrained: ${(done / 1e6).toFixed(1)}${total ? ` of ${(total / 1e6).toFixed(1)}` : ''} MB`;
    if (process.stderr.isTTY) {
      const bar = '#'.repeat(Math.floor(pct / 5)).padEnd(20, '.');
      process.stderr.write(`\r${text} [${bar}] ${pct}%${done === total ? '\n' : ''}`);
    } else if (Math.floor(pct / 25) > shown) {
      shown = Math.floor(pct / 25);
      ctx.logger.info(`${text} (${pct}%)`);
    }
  };
}

/** The pretrained model `initFrom` names: a converted (or any tfjs LayersModel) folder, or a checkpoint converted in memory. */
async function source(path: string, zoo: string, ctx: TrainContext): Promise<LayersModel> {
  if (!existsSync(path))
    throw new TricksError(`initFrom ${path}: no such file or folder`, 'give a `tricks convert` folder or a .pth/.pt/.safetensors file');
  if (statSync(path).isDirectory()) {
    if (!existsSync(join(path, 'model.json')))
      throw new TricksError(
        `initFrom ${path}: the folder has no model.json`,
        'give the folder `tricks convert --out` wrote, or the checkpoint file',
      );
    return loadModel(path);
  }
  const src = sourceModel(zoo);
  if (src && src.zoo !== zoo)
    throw new TricksError(
      `initFrom ${path}: ${src.publisher}'s ${zoo} is the zoo's ${src.zoo}, not the zoo's ${zoo}`,
      `give --model ${src.zoo}`,
    );
  if (!src)
    throw new TricksError(
      `initFrom ${path}: a checkpoint file needs a model tricks convert maps, and --model ${zoo} is not one`,
      'see `tricks convert --help` for the models, or convert the file yourself and give the folder',
    );
  const { model, report } = convertCheckpoint(await readCheckpoint(path), { model: zoo, inputSize: ctx.inputShape[0] });
  ctx.logger.info(
    `init-from: ${path}: ${report.publisher} ${report.source}, ${report.loaded} tensors (${report.format}), converted in memory`,
  );
  return model;
}

/**
 * Copies `from`'s weights onto `to`, weight by weight (both are the same zoo model). The classifier may
 * differ in its class count (then `to` keeps its new head), and a first conv over 3 channels goes onto
 * 1-channel input summed over its input channels (timm's adapt_input_conv). Any other mismatch is an error.
 */
export function transferWeights(from: LayersModel, to: LayersModel, log: (m: string) => void): void {
  const [la, lb] = [from.layers.filter((l) => l.weights.length), to.layers.filter((l) => l.weights.length)];
  if (la.length !== lb.length || from.weights.length !== to.weights.length)
    throw new TricksError(
      `initFrom: the pretrained model has ${from.weights.length} weights in ${la.length} layers, the configured ${to.name} ${to.weights.length} in ${lb.length}`,
      'give --model the architecture the weights were trained for (the converted model.json says it under tricks.model)',
    );
  const head = [...lb].reverse().find((l) => l.getClassName() === 'Dense');
  let kept = '';
  // layer by layer: model.weights' order depends on the trainable flags, a layer's own does not
  lb.forEach((layer, li) => {
    const src = la[li]!.getWeights();
    const values = layer.getWeights().map((w, i) => {
      const v = src[i]!;
      const [sa, sb] = [v.shape, w.shape];
      if (sa.join() === sb.join()) return v;
      if (layer === head && sa.length === sb.length && sa.at(-1) !== sb.at(-1)) {
        kept ||= `${sa.at(-1)} classes in the pretrained weights, ${sb.at(-1)} here`;
        return w;
      }
      if (sa.length === 4 && sa[2] === 3 && sb[2] === 1 && [0, 1, 3].every((d) => sa[d] === sb[d])) {
        log(`init-from: ${layer.name} takes 1-channel input: its pretrained RGB kernel summed over the channels (timm's adapt_input_conv)`);
        return tf.sum(v, 2, true);
      }
      throw new TricksError(
        `initFrom: ${layer.weights[i]!.originalName} is [${sb.join(', ')}] here, [${sa.join(', ')}] in the pretrained model`,
        'give --model (and its options) of the architecture the weights were trained for',
      );
    });
    layer.setWeights(values);
  });
  if (kept) log(`init-from: the classifier is new (${kept}): ${head!.name} initialized`);
}

/**
 * The built-in behind `initFrom` (`tricks train --init-from`): before any other setup tap, the run's model
 * gets the pretrained weights (the model pads as PyTorch does: zoo option padding 'torch').
 */
export const initFromBuiltin = definePlugin({
  name: NAME,
  description: 'starts the model from pretrained weights (config.initFrom: a converted folder or a PyTorch/safetensors checkpoint)',
  apply(api) {
    const { initFrom, pretrained } = api.config;
    if (!initFrom && !pretrained) return;
    if (initFrom && pretrained)
      throw new TricksError(
        'initFrom and pretrained exclude each other',
        "--pretrained downloads torchvision's weights; --init-from gives your own",
      );
    // torchvision's convs pad k/2 on both sides; the zoo's 'same' padding would shift every strided layer
    const options = (api.config.model.options ??= {});
    // PyTorch's weights (a checkpoint, a converted folder, --pretrained); a tricks run's model keeps its own padding
    const folder = initFrom && existsSync(join(initFrom, 'model.json')) ? join(initFrom, 'model.json') : undefined;
    const converted = folder ? Boolean(JSON.parse(readFileSync(folder, 'utf8'))?.userDefinedMetadata?.tricks?.converted) : true;
    const padded = converted && sourceModel(api.config.model.name) && api.config.model.name !== 'swin-t';
    if (padded && options.padding === undefined) options.padding = 'torch';
    api.hooks.setup.tapPromise({ name: NAME, stage: -1e8 }, async (ctx) => {
      if (ctx.resumed) return; // the checkpoint holds the weights
      const path = initFrom ?? (await fetchPretrained(api.config.model.name, { progress: progress(ctx), log: (m) => ctx.logger.info(m) }));
      const from = await source(resolve(path), api.config.model.name, ctx);
      try {
        transferWeights(from, ctx.model, (m) => ctx.logger.info(m));
      } finally {
        from.dispose();
      }
      const normalizes = api.config.plugins.some(
        (p) => (p.name === 'finetune' && p.options.normalize !== false) || (p.name === 'augment' && p.options.normalize === 'imagenet'),
      );
      ctx.logger.info(`init-from: ${path}: ${ctx.model.weights.length} weights loaded${padded ? ' (the model pads as PyTorch)' : ''}`);
      if (!normalizes && converted)
        ctx.logger.warn(
          'init-from: ImageNet weights expect ImageNet-normalized input: add the finetune plugin (it normalizes) or augment with normalize "imagenet"',
        );
    });
  },
});
