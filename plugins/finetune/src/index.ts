import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { definePlugin, STAGE_AUGMENT, TricksError, type Batch, type TrainContext } from '@tricks/core';
import { IMAGENET_MEAN, IMAGENET_STD, normalize } from '@tricks/helper-augment';

export const PLUGIN_NAME = 'finetune';

export interface FinetuneOptions {
  /** Epochs with the backbone frozen (only the head trains), then everything trains (fastai's fine_tune freeze_epochs). */
  freezeEpochs: number;
  /** Trailing layers with weights that form the head (the new classifier): 1 = the last Dense. */
  head: number;
  /** Layer groups for discriminative lrs: the body in groups - 1 equal parts by layer order, then the head. */
  groups: number;
  /** fastai's slice(lr / lrMult, lr): group lrs spread geometrically from lr / lrMult (first group) to lr (head). */
  lrMult: number;
  /** timm's layer decay instead: group g of G gets lr * layerDecay^(G - 1 - g). Null = use lrMult. */
  layerDecay: number | null;
  /** The factor on every lr once the backbone is unfrozen (fastai halves base_lr). */
  unfreezeLr: number;
  /** 'train': batch norm keeps learning while frozen (fastai's train_bn); 'frozen': its weights and running stats stay, in inference mode (Keras). */
  bn: 'train' | 'frozen';
  /** The input normalization the pretrained weights expect, applied in training and evaluation unless augment normalizes. */
  normalize: 'imagenet' | false;
}

interface LayerLike {
  name: string;
  trainable: boolean;
  weights: { name: string }[];
  getClassName(): string;
  call: unknown;
}

const isBn = (l: LayerLike) => l.getClassName() === 'BatchNormalization';

/** The model's layers with weights, in order, split into the body's groups and the head (the last `head` of them). */
export function layerGroups(model: LayersModel, o: Pick<FinetuneOptions, 'head' | 'groups'>): LayerLike[][] {
  const weighted = (model.layers as unknown as LayerLike[]).filter((l) => l.weights.length > 0);
  if (o.head >= weighted.length)
    throw new TricksError(
      `finetune: plugins.finetune.head is ${o.head}, but the model has only ${weighted.length} layers with weights`,
      'give a smaller head (1 = the classifier)',
    );
  const body = weighted.slice(0, weighted.length - o.head);
  const n = Math.min(o.groups - 1, body.length);
  const groups = Array.from({ length: n }, (_, g) =>
    body.slice(Math.floor((g * body.length) / n), Math.floor(((g + 1) * body.length) / n)),
  );
  return [...groups, weighted.slice(weighted.length - o.head)];
}

/** Each group's lr factor: fastai's even_mults(1/lrMult, 1, G), or timm's layerDecay^(G-1-g). */
export function groupScales(count: number, o: Pick<FinetuneOptions, 'lrMult' | 'layerDecay'>): number[] {
  return Array.from({ length: count }, (_, g) =>
    o.layerDecay !== null ? o.layerDecay ** (count - 1 - g) : count === 1 ? 1 : (1 / o.lrMult) ** ((count - 1 - g) / (count - 1)),
  );
}

/**
 * Fine-tuning a pretrained backbone (fastai's `fine_tune`, Keras's transfer-learning guide): the backbone
 * frozen for `freezeEpochs` (the head alone trains), then unfrozen with discriminative lrs by layer
 * group; batch norm either keeps learning (fastai) or stays in inference mode while frozen (Keras); and
 * the ImageNet normalization the weights expect.
 */
export default definePlugin<FinetuneOptions>({
  name: PLUGIN_NAME,
  description:
    "fine-tune pretrained weights: freeze the backbone, then unfreeze with discriminative lrs (fastai's fine_tune, timm's layer decay)",
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      freezeEpochs: { type: 'integer', minimum: 0, default: 1 },
      head: { type: 'integer', minimum: 1, default: 1 },
      groups: { type: 'integer', minimum: 1, default: 3 },
      lrMult: { type: 'number', minimum: 1, default: 100 },
      layerDecay: { anyOf: [{ type: 'null' }, { type: 'number', exclusiveMinimum: 0, maximum: 1 }], default: null },
      unfreezeLr: { type: 'number', exclusiveMinimum: 0, default: 0.5 },
      bn: { enum: ['train', 'frozen'], default: 'train' },
      normalize: { enum: ['imagenet', false], default: 'imagenet' },
    },
  },
  apply(api, options) {
    let groups: LayerLike[][] = [];
    let frozen: boolean | undefined;
    let ctxRef: TrainContext | undefined;
    const inference = new Map<LayerLike, unknown>();
    const augmentNormalizes = api.config.plugins.some((p) => p.name === 'augment' && p.options.normalize !== false);

    const setFrozen = (ctx: TrainContext, freeze: boolean) => {
      for (const l of groups.slice(0, -1).flat()) {
        const keepBn = isBn(l) && options.bn === 'train';
        l.trainable = !freeze || keepBn;
        if (isBn(l) && options.bn === 'frozen') {
          if (freeze && !inference.has(l)) {
            // an own `call` shadows the prototype's (and the wasm backend's training path): inference statistics
            const own = Object.getPrototypeOf(l).call as (this: LayerLike, x: unknown, k: Record<string, unknown>) => unknown;
            inference.set(l, own);
            l.call = function (this: LayerLike, x: unknown, k: Record<string, unknown>) {
              return own.call(this, x, { ...k, training: false });
            };
          } else if (!freeze && inference.has(l)) {
            delete (l as { call?: unknown }).call;
            inference.delete(l);
          }
        }
      }
      const scales = groupScales(groups.length, options);
      const byVar = new Map(groups.flatMap((g, i) => g.flatMap((l) => l.weights.map((w) => [w.name, scales[i]!] as const))));
      const after = freeze ? 1 : options.unfreezeLr;
      ctx.optimizer.lrScale = freeze ? () => 1 : (name) => (byVar.get(name) ?? 1) * after;
      if (frozen !== freeze)
        ctx.logger.info(
          freeze
            ? `finetune: epoch ${ctx.epoch + 1}: the backbone is frozen (${groups.slice(0, -1).flat().length} layers${options.bn === 'train' ? ', batch norm still trains' : ', batch norm in inference mode'}); the head (${groups
                .at(-1)!
                .map((l) => l.name)
                .join(', ')}) trains`
            : `finetune: epoch ${ctx.epoch + 1}: everything trains; lr factors by group ${scales.map((s) => (s * after).toPrecision(2)).join(', ')}`,
        );
      frozen = freeze;
    };

    api.hooks.setup.tapPromise({ name: PLUGIN_NAME }, async (ctx) => {
      ctxRef = ctx;
      groups = layerGroups(ctx.model, options);
      if (options.normalize === 'imagenet' && augmentNormalizes) {
        const aug = api.config.plugins.find((p) => p.name === 'augment')!.options.normalize;
        if (aug !== 'imagenet')
          ctx.logger.warn(
            `finetune: augment normalizes with ${JSON.stringify(aug ?? 'the dataset statistics')}; pretrained ImageNet weights expect ImageNet mean/std: set plugins.augment.normalize to "imagenet"`,
          );
      }
    });
    // the frozen state follows the epoch, so a resumed run freezes exactly as the uninterrupted one
    api.hooks.epochStart.tap({ name: PLUGIN_NAME }, (ctx) => setFrozen(ctx, ctx.epoch < options.freezeEpochs));
    // Outside the steps every layer is trainable again: a frozen layer's weights move behind the trainable ones in
    // model.weights, the order a checkpoint saves the model and the optimizer's slots by (and model.json records
    // trainable: false), so a checkpoint written while frozen would not load into the model a resumed run builds.
    // First in the epoch hook (before early-stopping, best-checkpoint and the checkpoint) and in the interrupt hook.
    const thaw = async () => {
      for (const l of groups.slice(0, -1).flat()) l.trainable = true;
    };
    api.hooks.epoch.tapPromise({ name: PLUGIN_NAME, stage: -1e6 }, thaw);
    api.hooks.interrupt.tapPromise({ name: PLUGIN_NAME, stage: -1e6 }, thaw);
    if (options.normalize === 'imagenet' && !augmentNormalizes) {
      const norm = (b: Batch): Batch =>
        b.x.shape.length === 4 ? { ...b, x: normalize(b.x as tf.Tensor4D, IMAGENET_MEAN, IMAGENET_STD) } : b;
      api.hooks.batch.tap({ name: PLUGIN_NAME, stage: STAGE_AUGMENT + 50 }, norm);
      api.hooks.evalBatch.tap({ name: PLUGIN_NAME, stage: STAGE_AUGMENT + 50 }, norm);
    }
    // every exit: everything trainable again, batch norm's own call back, the optimizer's lrs plain
    api.hooks.teardown.tapPromise({ name: PLUGIN_NAME }, async () => {
      for (const l of groups.flat()) l.trainable = true;
      for (const l of inference.keys()) delete (l as { call?: unknown }).call;
      inference.clear();
      if (ctxRef) ctxRef.optimizer.lrScale = () => 1;
      ctxRef = undefined;
      frozen = undefined;
    });
  },
});
