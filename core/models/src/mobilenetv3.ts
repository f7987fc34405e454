import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { BuildHooks, ModelSpec } from '@tricks/core';
import {
  activation,
  apply,
  checkOptions,
  convBn,
  makeDivisible,
  option,
  paddingOption,
  squeezeExcite,
  type Act,
  type L,
} from './common.js';
import { HardSigmoid } from './runtime.js';

/** One row of the MobileNetV3 paper's Tables 1 and 2: [in, kernel, expanded, out, SE, activation, stride]. */
type Row = [number, number, number, number, boolean, 'RE' | 'HS', number];

// torchvision's _mobilenet_v3_conf (Howard et al. 2019, Table 1 and Table 2)
const LARGE: Row[] = [
  [16, 3, 16, 16, false, 'RE', 1],
  [16, 3, 64, 24, false, 'RE', 2],
  [24, 3, 72, 24, false, 'RE', 1],
  [24, 5, 72, 40, true, 'RE', 2],
  [40, 5, 120, 40, true, 'RE', 1],
  [40, 5, 120, 40, true, 'RE', 1],
  [40, 3, 240, 80, false, 'HS', 2],
  [80, 3, 200, 80, false, 'HS', 1],
  [80, 3, 184, 80, false, 'HS', 1],
  [80, 3, 184, 80, false, 'HS', 1],
  [80, 3, 480, 112, true, 'HS', 1],
  [112, 3, 672, 112, true, 'HS', 1],
  [112, 5, 672, 160, true, 'HS', 2],
  [160, 5, 960, 160, true, 'HS', 1],
  [160, 5, 960, 160, true, 'HS', 1],
];
const SMALL: Row[] = [
  [16, 3, 16, 16, true, 'RE', 2],
  [16, 3, 72, 24, false, 'RE', 2],
  [24, 3, 88, 24, false, 'RE', 1],
  [24, 5, 96, 40, true, 'HS', 2],
  [40, 5, 240, 40, true, 'HS', 1],
  [40, 5, 240, 40, true, 'HS', 1],
  [40, 5, 120, 48, true, 'HS', 1],
  [48, 5, 144, 48, true, 'HS', 1],
  [48, 5, 288, 96, true, 'HS', 2],
  [96, 5, 576, 96, true, 'HS', 1],
  [96, 5, 576, 96, true, 'HS', 1],
];

/**
 * MobileNetV3-Large / -Small (Howard et al. 2019) as torchvision builds them: 3x3/2 stem of 16 with h-swish,
 * the published inverted-residual tables (SE squeeze = make_divisible(expanded/4, 8), ReLU inside, h-sigmoid
 * gate), a 1x1 conv to 6x the last width, global pooling, Linear(1280 | 1024) + h-swish + dropout + Linear.
 * BN eps 1e-3, momentum 0.01 (PyTorch sense). Options dropout (default 0.2), padding ('same'; 'torch': PyTorch's).
 * A "stage" for the block hook and the neck ends where the resolution halves (5 stages, as C1..C5).
 */
export function mobilenetV3(size: 'small' | 'large', spec: ModelSpec, hooks: BuildHooks): LayersModel {
  const model = `mobilenetv3-${size}`;
  checkOptions(spec.options, ['dropout', 'padding'], model);
  const dropout = option(spec.options, 'dropout', 0.2, model);
  const padding = paddingOption(spec.options, model);
  const rows = size === 'large' ? LARGE : SMALL;
  const lastChannel = size === 'large' ? 1280 : 1024;
  const bn = { momentum: 0.99, epsilon: 1e-3, padding };
  const input = tfl.input({ shape: spec.inputShape, name: 'input' });
  let x = convBn(input, 16, 'stem', { stride: 2, act: 'hswish', ...bn });
  const stages: L[] = [];
  let stage = 1;
  let index = 0;
  rows.forEach(([cin, k, exp, cout, se, a, stride], i) => {
    if (stride === 2 && i > 0) {
      stages.push(x);
      stage++;
      index = 0;
    }
    const act: Act = a === 'HS' ? 'hswish' : 'relu';
    const name = `b${i + 1}`;
    let h = x;
    if (exp !== cin) h = convBn(h, exp, `${name}_expand`, { kernel: 1, act, ...bn });
    h = convBn(h, exp, `${name}_dw`, { kernel: k, stride, depthwise: true, act, ...bn });
    if (se)
      h = squeezeExcite(
        h,
        exp,
        makeDivisible(exp / 4, 8),
        `${name}_se`,
        'relu',
        'hsigmoid',
        () => new HardSigmoid({ name: `${name}_se_gate` }),
      );
    h = convBn(h, cout, `${name}_project`, { kernel: 1, ...bn });
    h = hooks.block.call(h, { model, kind: 'mbconv', stage, index, inChannels: cin, outChannels: cout, name });
    x = stride === 1 && cin === cout ? apply(tfl.layers.add({ name: `${name}_add` }), [h, x]) : h;
    index++;
  });
  const last = rows[rows.length - 1][3] * 6;
  x = convBn(x, last, 'head', { kernel: 1, act: 'hswish', ...bn });
  stages.push(x);
  let f = apply(tfl.layers.globalAveragePooling2d({ name: 'gap' }), x);
  f = hooks.neck.call(f, { model, stages, name: 'neck' });
  f = apply(tfl.layers.dense({ units: lastChannel, name: 'fc1' }), f);
  f = activation(f, 'hswish', 'fc1_act');
  if (dropout > 0) f = apply(tfl.layers.dropout({ rate: dropout, name: 'dropout' }), f);
  const out = apply(tfl.layers.dense({ units: spec.numClasses, name: 'logits' }), f);
  return tfl.model({ inputs: input, outputs: out, name: model });
}
