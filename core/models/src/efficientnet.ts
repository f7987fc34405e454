import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { BuildHooks, ModelSpec } from '@tricks/core';
import { apply, checkOptions, convBn, option, paddingOption, squeezeExcite, type L } from './common.js';
import { StochasticDepth } from './runtime.js';

/** [expand ratio, kernel, stride, in, out, layers]: torchvision's efficientnet_b0 (Tan & Le 2019, Table 1). */
const B0: [number, number, number, number, number, number][] = [
  [1, 3, 1, 32, 16, 1],
  [6, 3, 2, 16, 24, 2],
  [6, 5, 2, 24, 40, 2],
  [6, 3, 2, 40, 80, 3],
  [6, 5, 1, 80, 112, 3],
  [6, 5, 2, 112, 192, 4],
  [6, 3, 1, 192, 320, 1],
];

/**
 * EfficientNet-B0 as torchvision builds it: 3x3/2 stem of 32 + swish, MBConv blocks (1x1 expand, depthwise,
 * SE with squeeze = max(1, in/4) and swish inside, 1x1 project), stochastic depth on the residual branches
 * with probability 0.2 * blockIndex / 16, 1x1 conv to 1280, pooling, dropout 0.2, Linear.
 * Options: dropout (0.2), stochasticDepth (0.2), padding ('same'; 'torch': PyTorch's). Every MBConv's branch passes the block hook; the branch of a
 * block without a residual (stride 2 or a width change) passes it too, and is then the block's output.
 * Block-hook stages are the 7 rows of the table; the neck gets one output per resolution (/2 ... /32).
 */
export function efficientNetB0(spec: ModelSpec, hooks: BuildHooks): LayersModel {
  const model = 'efficientnet-b0';
  checkOptions(spec.options, ['dropout', 'stochasticDepth', 'padding'], model);
  const padding = paddingOption(spec.options, model);
  const dropout = option(spec.options, 'dropout', 0.2, model);
  const sd = option(spec.options, 'stochasticDepth', 0.2, model, (v) => typeof v === 'number' && v >= 0 && v < 1, 'a number in [0, 1)');
  const bn = { momentum: 0.9, epsilon: 1e-5, padding };
  const input = tfl.input({ shape: spec.inputShape, name: 'input' });
  let x = convBn(input, 32, 'stem', { stride: 2, act: 'swish', ...bn });
  const total = B0.reduce((n, r) => n + r[5], 0);
  let id = 0;
  const stages: L[] = [];
  B0.forEach(([expand, k, stride0, cin0, cout, n], s) => {
    for (let b = 0; b < n; b++) {
      const cin = b === 0 ? cin0 : cout;
      const stride = b === 0 ? stride0 : 1;
      const name = `s${s + 1}b${b + 1}`;
      const exp = cin * expand;
      let h = x;
      if (exp !== cin) h = convBn(h, exp, `${name}_expand`, { kernel: 1, act: 'swish', ...bn });
      h = convBn(h, exp, `${name}_dw`, { kernel: k, stride, depthwise: true, act: 'swish', ...bn });
      h = squeezeExcite(h, exp, Math.max(1, Math.floor(cin / 4)), `${name}_se`, 'swish', 'sigmoid');
      h = convBn(h, cout, `${name}_project`, { kernel: 1, ...bn });
      h = hooks.block.call(h, { model, kind: 'mbconv', stage: s + 1, index: b, inChannels: cin, outChannels: cout, name });
      if (stride === 1 && cin === cout) {
        const rate = (sd * id) / total;
        if (rate > 0) h = apply(new StochasticDepth({ rate, name: `${name}_drop_path` }), h);
        x = apply(tfl.layers.add({ name: `${name}_add` }), [h, x]);
      } else {
        x = h;
      }
      id++;
    }
    if (s === B0.length - 1 || B0[s + 1][2] === 2) stages.push(x);
  });
  x = convBn(x, 1280, 'head', { kernel: 1, act: 'swish', ...bn });
  let f = apply(tfl.layers.globalAveragePooling2d({ name: 'gap' }), x);
  f = hooks.neck.call(f, { model, stages, name: 'neck' });
  if (dropout > 0) f = apply(tfl.layers.dropout({ rate: dropout, name: 'dropout' }), f);
  const out = apply(tfl.layers.dense({ units: spec.numClasses, name: 'logits' }), f);
  return tfl.model({ inputs: input, outputs: out, name: model });
}
