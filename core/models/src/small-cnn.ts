import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { TricksError, type BuildHooks, type ModelSpec } from '@tricks/core';

/** Above this side (px), small-cnn pools globally instead of flattening: a flattened 224-px map would feed a 25.7M-weight dense layer. */
export const SMALL_CNN_FLATTEN_MAX = 64;

/**
 * Two 3x3 convs with BN and max-pooling, then a dense head: the quick-start model. The head takes the
 * flattened maps for inputs of at most 64 px a side (the quick start's model, unchanged), and their global
 * average (Keras GlobalAveragePooling2D, as timm's and torchvision's CNNs) above that, so the parameter count
 * no longer grows with the image: 29k at width 32 and 10 classes whatever the size, against 25.7M flattened
 * at 224 px. `options.head`: 'auto' (default), 'flatten' or 'gap'.
 */
export function smallCnn(spec: ModelSpec, hooks: BuildHooks): LayersModel {
  const width = Number(spec.options?.width ?? 32);
  const head = String(spec.options?.head ?? 'auto');
  if (!['auto', 'flatten', 'gap'].includes(head))
    throw new TricksError(`small-cnn: options.head must be auto, flatten or gap, got ${JSON.stringify(spec.options?.head)}`);
  const [h, w] = spec.inputShape;
  const gap = head === 'gap' || (head === 'auto' && Math.max(h, w) > SMALL_CNN_FLATTEN_MAX);
  const input = tfl.input({ shape: spec.inputShape, name: 'input' });
  let x = input as tfl.SymbolicTensor;
  const stages: tfl.SymbolicTensor[] = [];
  [width, width * 2].forEach((ch, i) => {
    x = tfl.layers
      .conv2d({ filters: ch, kernelSize: 3, padding: 'same', useBias: false, name: `conv${i + 1}` })
      .apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.batchNormalization({ name: `bn${i + 1}` }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reLU({ name: `relu${i + 1}` }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.maxPooling2d({ poolSize: 2, name: `pool${i + 1}` }).apply(x) as tfl.SymbolicTensor;
    stages.push(x);
  });
  let f = (gap ? tfl.layers.globalAveragePooling2d({ name: 'gap' }) : tfl.layers.flatten({ name: 'flatten' })).apply(
    x,
  ) as tfl.SymbolicTensor;
  f = hooks.neck.call(f, { model: 'small-cnn', stages, name: 'neck' });
  f = tfl.layers.dense({ units: 128, activation: 'relu', name: 'fc1' }).apply(f) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: spec.numClasses, name: 'logits' }).apply(f) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out, name: 'small-cnn' });
}
