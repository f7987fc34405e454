import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { BuildHooks, ModelSpec } from '@tricks/core';
import { apply, checkOptions, option, type L } from './common.js';
import { PatchMerge, StochasticDepth, WindowAttention } from './runtime.js';

export interface SwinConfig {
  name: string;
  patch: number;
  embedDim: number;
  depths: number[];
  heads: number[];
  window: number;
  stochasticDepth: number;
}

export const SWIN_T: SwinConfig = {
  name: 'swin-t',
  patch: 4,
  embedDim: 96,
  depths: [2, 2, 6, 2],
  heads: [3, 6, 12, 24],
  window: 7,
  stochasticDepth: 0.2,
};
/** For 32x32 inputs: 2x2 patches (16x16 tokens), 4x4 windows, three stages 96-192-384 (16, 8, 4 tokens a side). */
export const SWIN_CIFAR: SwinConfig = {
  name: 'swin-cifar',
  patch: 2,
  embedDim: 96,
  depths: [2, 6, 2],
  heads: [3, 6, 12],
  window: 4,
  stochasticDepth: 0.1,
};

const isInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
const isIntArray = (v: unknown) => Array.isArray(v) && v.length > 0 && v.every(isInt);

/**
 * Swin Transformer (Liu et al. 2021) as torchvision 0.14 builds it, in NHWC throughout: a patch x patch conv
 * with stride patch + LayerNorm; stages of Swin blocks (LN, (shifted) window attention, stochastic depth, add;
 * LN, MLP 4x with GELU, stochastic depth, add), odd blocks shifted by window/2; patch merging (2x2 gather,
 * LN(4C), Linear(4C, 2C, no bias)) between stages; final LN, global pooling, Linear. LayerNorm eps 1e-5.
 * The block hook receives each block's MLP branch [B, H, W, C] (the block's last residual branch) before
 * its stochastic depth and add: the token map keeps its 2-D layout, so a convnet tap (SE) works unchanged.
 * Options: embedDim, depths, heads, window, patch, stochasticDepth.
 */
export function swin(base: SwinConfig, spec: ModelSpec, hooks: BuildHooks): LayersModel {
  const model = base.name;
  checkOptions(spec.options, ['embedDim', 'depths', 'heads', 'window', 'patch', 'stochasticDepth'], model);
  const o = spec.options;
  const cfg: SwinConfig = {
    name: model,
    embedDim: option(o, 'embedDim', base.embedDim, model, isInt, 'a positive integer'),
    depths: option(o, 'depths', base.depths, model, isIntArray, 'an array of positive integers'),
    heads: option(o, 'heads', base.heads, model, isIntArray, 'an array of positive integers'),
    window: option(o, 'window', base.window, model, isInt, 'a positive integer'),
    patch: option(o, 'patch', base.patch, model, isInt, 'a positive integer'),
    stochasticDepth: option(
      o,
      'stochasticDepth',
      base.stochasticDepth,
      model,
      (v) => typeof v === 'number' && v >= 0 && v < 1,
      'a number in [0, 1)',
    ),
  };
  if (cfg.heads.length !== cfg.depths.length)
    throw new Error(`${model}: heads (${cfg.heads.length}) and depths (${cfg.depths.length}) differ in length`);
  const ln = (x: L, name: string) => apply(tfl.layers.layerNormalization({ epsilon: 1e-5, name }), x);
  const dense = (x: L, units: number, name: string, act?: 'gelu', useBias = true) =>
    apply(
      tfl.layers.dense({ units, activation: act, useBias, kernelInitializer: tfl.initializers.truncatedNormal({ stddev: 0.02 }), name }),
      x,
    );

  const input = tfl.input({ shape: spec.inputShape, name: 'input' });
  let x = apply(
    tfl.layers.conv2d({ filters: cfg.embedDim, kernelSize: cfg.patch, strides: cfg.patch, padding: 'valid', name: 'patch_embed' }),
    input,
  );
  x = ln(x, 'patch_norm');
  const total = cfg.depths.reduce((a, b) => a + b, 0);
  let id = 0;
  let dim = cfg.embedDim;
  const stages: L[] = [];
  cfg.depths.forEach((depth, s) => {
    if (s > 0) {
      x = apply(new PatchMerge({ name: `merge${s}` }), x);
      x = ln(x, `merge${s}_norm`);
      x = dense(x, 2 * dim, `merge${s}_reduction`, undefined, false);
      dim *= 2;
    }
    for (let b = 0; b < depth; b++) {
      const name = `s${s + 1}b${b + 1}`;
      const rate = total > 1 ? (cfg.stochasticDepth * id) / (total - 1) : 0;
      const drop = (h: L, tag: string) => (rate > 0 ? apply(new StochasticDepth({ rate, name: `${name}_${tag}_drop_path` }), h) : h);
      let h = ln(x, `${name}_norm1`);
      h = apply(
        new WindowAttention({
          numHeads: cfg.heads[s],
          windowSize: cfg.window,
          shiftSize: b % 2 === 0 ? 0 : Math.floor(cfg.window / 2),
          name: `${name}_attn`,
        }),
        h,
      );
      x = apply(tfl.layers.add({ name: `${name}_add1` }), [x, drop(h, 'attn')]);
      h = ln(x, `${name}_norm2`);
      h = dense(h, 4 * dim, `${name}_mlp1`, 'gelu');
      h = dense(h, dim, `${name}_mlp2`);
      h = hooks.block.call(h, { model, kind: 'swin', stage: s + 1, index: b, inChannels: dim, outChannels: dim, name });
      x = apply(tfl.layers.add({ name: `${name}_add2` }), [x, drop(h, 'mlp')]);
      id++;
    }
    stages.push(x);
  });
  x = ln(x, 'norm');
  let f = apply(tfl.layers.globalAveragePooling2d({ name: 'gap' }), x);
  f = hooks.neck.call(f, { model, stages, name: 'neck' });
  const out = apply(tfl.layers.dense({ units: spec.numClasses, name: 'logits' }), f);
  return tfl.model({ inputs: input, outputs: out, name: model });
}
