import type { LayersModel } from '@tensorflow/tfjs-layers';
import { definePlugin, type TrainContext } from '@tricks/core';

export const PLUGIN_NAME = 'no-bias-decay';

export interface NoBiasDecayOptions {
  /** Exclude every weight named "bias" (dense, conv, depthwise, separable conv...). */
  bias: boolean;
  /** Exclude gamma and beta of normalization layers (BatchNormalization, LayerNormalization...). */
  norm: boolean;
}

interface LayerLike {
  getClassName(): string;
  trainableWeights: { name: string; originalName: string; shape: number[] }[];
  layers?: LayerLike[];
}

/** A normalization layer, by its class: BatchNormalization, LayerNormalization, GroupNormalization... */
export const isNormalization = (className: string) => /Normali[sz]ation$/.test(className);

/**
 * Names of the trainable variables that get no weight decay, decided from each layer's class and each
 * weight's own name (the last part of its original name, e.g. "conv2d_3/bias" -> "bias"), for any
 * backbone: biases, and normalization layers' gamma/beta. Nested models are walked.
 */
export function noDecayVariables(model: LayersModel, o: NoBiasDecayOptions = { bias: true, norm: true }): Set<string> {
  const out = new Set<string>();
  const visit = (layer: LayerLike) => {
    if (layer.layers) {
      for (const l of layer.layers) visit(l);
      return;
    }
    const norm = isNormalization(layer.getClassName());
    for (const w of layer.trainableWeights) {
      const short = w.originalName.split('/').pop()!;
      if ((o.bias && short === 'bias') || (o.norm && norm && (short === 'gamma' || short === 'beta'))) out.add(w.name);
    }
  };
  for (const l of model.layers as unknown as LayerLike[]) visit(l);
  return out;
}

export default definePlugin<NoBiasDecayOptions>({
  name: PLUGIN_NAME,
  description: 'no weight decay on biases and on normalization gamma/beta (He et al. 2019, "Bag of Tricks")',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: { bias: { type: 'boolean', default: true }, norm: { type: 'boolean', default: true } },
  },
  apply(api, options) {
    let previous: ((name: string) => boolean) | undefined;
    let ctxRef: TrainContext | undefined;
    api.hooks.setup.tapPromise({ name: PLUGIN_NAME }, async (ctx) => {
      const excluded = noDecayVariables(ctx.model, options);
      previous = ctx.optimizer.decayFilter;
      ctxRef = ctx;
      const prev = previous;
      ctx.optimizer.decayFilter = (name) => !excluded.has(name) && prev(name);
      const all = ctx.model.trainableWeights;
      const params = all.filter((w) => excluded.has(w.name)).reduce((n, w) => n + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1), 0);
      ctx.logger.info(
        `no-bias-decay: ${excluded.size} of ${all.length} trainable variables (${params.toLocaleString('en-US')} parameters) get no weight decay`,
      );
    });
    // every exit: the optimizer gets its own decay filter back
    api.hooks.teardown.tapPromise({ name: PLUGIN_NAME }, async () => {
      if (ctxRef && previous) ctxRef.optimizer.decayFilter = previous;
      ctxRef = previous = undefined;
    });
  },
});
