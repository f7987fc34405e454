import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { TricksError, type BuildHooks, type ModelSpec } from '@tricks/core';

/** Above this side (px), small-cnn pools globally instead of flattening: a flattened 224-px map would feed a 25.7M-weight dense layer. */
export const SMALL_CNN_FLATTEN_MAX = 64;

/**
 * PyTorch's nn.Conv2d / nn.Linear reset_parameters(): kernels kaiming_uniform_(a=sqrt(5)), i.e. U(+-1/sqrt(fan_in))
 * (tfjs varianceScaling, scale 1/3, fanIn, uniform: the same fan as torch's, receptive field x input channels), and
 * biases U(+-1/sqrt(fan_in)).
 */
function torchInit(fanIn: number) {
  const bound = 1 / Math.sqrt(fanIn);
  return {
    kernelInitializer: tfl.initializers.varianceScaling({ scale: 1 / 3, mode: 'fanIn', distribution: 'uniform' }),
    biasInitializer: tfl.initializers.randomUniform({ minval: -bound, maxval: bound }),
  };
}

/**
 * Two 3x3 convs with BN and max-pooling, then a dense head: the quick-start model. The head takes the
 * flattened maps for inputs of at most 64 px a side (the quick start's model, unchanged), and their global
 * average (Keras GlobalAveragePooling2D, as timm's and torchvision's CNNs) above that, so the parameter count
 * no longer grows with the image: 29k at width 32 and 10 classes whatever the size, against 25.7M flattened
 * at 224 px. `options.head`: 'auto' (default), 'flatten' or 'gap'.
 *
 * Defaults are PyTorch's (measured on the fashion-mnist ladder with its PyTorch twin, docs/results.md "Parity"):
 * `init: 'torch'` (nn.Conv2d/nn.Linear's own), BN `bnMomentum` 0.9 (PyTorch's 0.1) and `bnEpsilon` 1e-5. `init:
 * 'glorot'`, `bnMomentum: 0.99`, `bnEpsilon: 0.001` give the model as it was (tfjs-layers' defaults).
 */
export function smallCnn(spec: ModelSpec, hooks: BuildHooks): LayersModel {
  const width = Number(spec.options?.width ?? 32);
  const head = String(spec.options?.head ?? 'auto');
  if (!['auto', 'flatten', 'gap'].includes(head))
    throw new TricksError(`small-cnn: options.head must be auto, flatten or gap, got ${JSON.stringify(spec.options?.head)}`);
  const init = String(spec.options?.init ?? 'torch');
  if (!['torch', 'glorot'].includes(init))
    throw new TricksError(
      `small-cnn: options.init must be torch or glorot, got ${JSON.stringify(spec.options?.init)}`,
      'torch: PyTorch nn.Conv2d/nn.Linear initialization (default); glorot: tfjs-layers defaults',
    );
  const num = (key: string, dflt: number, ok: (v: number) => boolean, what: string) => {
    const v = spec.options?.[key] ?? dflt;
    if (typeof v !== 'number' || !ok(v)) throw new TricksError(`small-cnn: options.${key} must be ${what}, got ${JSON.stringify(v)}`);
    return v;
  };
  const momentum = num('bnMomentum', 0.9, (v) => v >= 0 && v < 1, 'a number in [0, 1) (tfjs sense: PyTorch 0.1 is 0.9)');
  const epsilon = num('bnEpsilon', 1e-5, (v) => v > 0, 'a positive number');
  const initFor = (fanIn: number): Partial<ReturnType<typeof torchInit>> => (init === 'torch' ? torchInit(fanIn) : {});
  const [h, w] = spec.inputShape;
  const gap = head === 'gap' || (head === 'auto' && Math.max(h, w) > SMALL_CNN_FLATTEN_MAX);
  const input = tfl.input({ shape: spec.inputShape, name: 'input' });
  let x = input as tfl.SymbolicTensor;
  const stages: tfl.SymbolicTensor[] = [];
  [width, width * 2].forEach((ch, i) => {
    const inChannels = x.shape[x.shape.length - 1] as number;
    const { kernelInitializer } = initFor(9 * inChannels);
    x = tfl.layers
      .conv2d({ filters: ch, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer, name: `conv${i + 1}` })
      .apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.batchNormalization({ momentum, epsilon, name: `bn${i + 1}` }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.reLU({ name: `relu${i + 1}` }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.maxPooling2d({ poolSize: 2, name: `pool${i + 1}` }).apply(x) as tfl.SymbolicTensor;
    stages.push(x);
  });
  let f = (gap ? tfl.layers.globalAveragePooling2d({ name: 'gap' }) : tfl.layers.flatten({ name: 'flatten' })).apply(
    x,
  ) as tfl.SymbolicTensor;
  f = hooks.neck.call(f, { model: 'small-cnn', stages, name: 'neck' });
  const fanIn = (t: tfl.SymbolicTensor) => t.shape[t.shape.length - 1] as number;
  f = tfl.layers.dense({ units: 128, activation: 'relu', ...initFor(fanIn(f)), name: 'fc1' }).apply(f) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: spec.numClasses, ...initFor(fanIn(f)), name: 'logits' }).apply(f) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out, name: 'small-cnn' });
}
