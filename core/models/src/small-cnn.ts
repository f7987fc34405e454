import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { BuildHooks, ModelSpec } from '@tricks/core';

/** Two 3x3 convs with BN and max-pooling, then a dense head on the flattened maps: the quick-start model. */
export function smallCnn(spec: ModelSpec, hooks: BuildHooks): LayersModel {
  const width = Number(spec.options?.width ?? 32);
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
  let f = tfl.layers.flatten({ name: 'flatten' }).apply(x) as tfl.SymbolicTensor;
  f = hooks.neck.call(f, { model: 'small-cnn', stages, name: 'neck' });
  f = tfl.layers.dense({ units: 128, activation: 'relu', name: 'fc1' }).apply(f) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: spec.numClasses, name: 'logits' }).apply(f) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out, name: 'small-cnn' });
}
