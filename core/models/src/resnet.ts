import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { BuildHooks, ModelSpec } from '@tricks/core';
import { apply, checkOptions, convBn, option, paddingOption, torchPad, type L } from './common.js';
import { GroupedConv2D, type GroupedConvImpl } from './runtime.js';

export type ResNetVariant = 'a' | 'b' | 'c' | 'd';

export interface ResNetConfig {
  /** The name the blocks and the neck report, e.g. "resnet50-d". */
  name: string;
  block: 'basic' | 'bottleneck';
  layers: [number, number, number, number];
  /** 'imagenet': 7x7/2 conv + 3x3/2 max-pool (or the deep stem); 'cifar': 3x3/1 conv(s), no max-pool. */
  stem: 'imagenet' | 'cifar';
  variant?: ResNetVariant;
  zeroGamma?: boolean;
  /** ResNeXt cardinality (grouped 3x3 conv in the bottleneck). */
  groups?: number;
  widthPerGroup?: number;
}

export const RESNET_OPTIONS = ['variant', 'zeroGamma', 'groupedConv', 'padding'];

/**
 * ResNet-18/34/50 (He et al. 2016) and ResNeXt (Xie et al. 2017), torchvision's layer widths, with the
 * tweaks of He et al. 2019 ("Bag of Tricks", section 4), cumulative as in the paper's Table 5:
 *  - 'a': the original: in a bottleneck the stride sits on the first 1x1 conv.
 *  - 'b': the stride moves to the 3x3 conv (torchvision's resnet50 is ResNet-50-B).
 *  - 'c': b + deep stem: three 3x3 convs (32, 32, 64 channels, the first with stride 2) instead of the 7x7.
 *  - 'd': c + a 2x2 average pool (stride 2) before the 1x1 conv of every down-sampling shortcut.
 * zeroGamma: the scale of the last BN of every residual branch starts at 0.
 * Basic blocks (18, 34) have no 1x1 to move the stride from, so 'b' equals 'a' for them.
 * ResNeXt's 3x3 is a GroupedConv2D (runtime module); option groupedConv picks its implementation.
 * Padding is TF-style 'same' (asymmetric at stride 2), unlike PyTorch's symmetric padding; shapes agree.
 * Option padding 'torch' pads as PyTorch does (what @tricks/convert builds for torchvision's and timm's weights).
 */
export function resnet(cfg: ResNetConfig, spec: ModelSpec, hooks: BuildHooks): LayersModel {
  const o = spec.options;
  checkOptions(o, RESNET_OPTIONS, cfg.name);
  const variant = option<ResNetVariant>(
    o,
    'variant',
    cfg.variant ?? 'a',
    cfg.name,
    (v) => ['a', 'b', 'c', 'd'].includes(v as string),
    "'a' | 'b' | 'c' | 'd'",
  );
  const zeroGamma = option(o, 'zeroGamma', cfg.zeroGamma ?? false, cfg.name);
  const impl = option<GroupedConvImpl>(
    o,
    'groupedConv',
    'depthwise',
    cfg.name,
    (v) => ['depthwise', 'split', 'dense'].includes(v as string),
    "'depthwise' | 'split' | 'dense'",
  );
  const strideOn3x3 = variant !== 'a';
  const deepStem = variant === 'c' || variant === 'd';
  const avgDown = variant === 'd';
  const groups = cfg.groups ?? 1;
  const widthPerGroup = cfg.widthPerGroup ?? 64;
  const expansion = cfg.block === 'bottleneck' ? 4 : 1;
  const cifar = cfg.stem === 'cifar';
  const padding = paddingOption(o, cfg.name);

  const input = tfl.input({ shape: spec.inputShape, name: 'input' });
  let x: L = input;
  if (deepStem) {
    x = convBn(x, 32, 'stem1', { stride: cifar ? 1 : 2, act: 'relu', padding });
    x = convBn(x, 32, 'stem2', { act: 'relu' });
    x = convBn(x, 64, 'stem3', { act: 'relu' });
  } else {
    x = convBn(x, 64, 'stem', { kernel: cifar ? 3 : 7, stride: cifar ? 1 : 2, act: 'relu', padding });
  }
  if (!cifar) {
    // after a ReLU, zero padding gives PyTorch's max-pool (which pads with -inf)
    const [px, pad] = torchPad(x, 3, 2, padding, 'stem_pool_pad');
    x = apply(tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: pad, name: 'stem_pool' }), px);
  }

  let inCh = 64;
  const stages: L[] = [];
  cfg.layers.forEach((n, s) => {
    const planes = 64 * 2 ** s;
    const outCh = planes * expansion;
    for (let b = 0; b < n; b++) {
      const stride = s > 0 && b === 0 ? 2 : 1;
      const name = `s${s + 1}b${b + 1}`;
      let branch: L;
      if (cfg.block === 'basic') {
        branch = convBn(x, planes, `${name}_1`, { stride, act: 'relu', padding });
        branch = convBn(branch, planes, `${name}_2`, { zeroGamma });
      } else {
        const width = Math.floor(planes * (widthPerGroup / 64)) * groups;
        branch = convBn(x, width, `${name}_1`, { kernel: 1, stride: strideOn3x3 ? 1 : stride, act: 'relu' });
        const s3 = strideOn3x3 ? stride : 1;
        if (groups > 1) {
          const [px, pad] = torchPad(branch, 3, s3, padding, `${name}_2_pad`);
          branch = apply(
            new GroupedConv2D({ filters: width, kernelSize: 3, strides: s3, groups, impl, padding: pad, name: `${name}_2_conv` }),
            px,
          );
          branch = apply(tfl.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5, name: `${name}_2_bn` }), branch);
          branch = apply(tfl.layers.reLU({ name: `${name}_2_act` }), branch);
        } else {
          branch = convBn(branch, width, `${name}_2`, { stride: s3, act: 'relu', padding });
        }
        branch = convBn(branch, outCh, `${name}_3`, { kernel: 1, zeroGamma });
      }
      branch = hooks.block.call(branch, {
        model: cfg.name,
        kind: cfg.block,
        stage: s + 1,
        index: b,
        inChannels: inCh,
        outChannels: outCh,
        name,
      });
      let shortcut: L = x;
      if (stride !== 1 || inCh !== outCh) {
        let sx = x;
        let sStride = stride;
        if (avgDown && stride !== 1) {
          sx = apply(tfl.layers.averagePooling2d({ poolSize: 2, strides: 2, padding: 'same', name: `${name}_down_pool` }), sx);
          sStride = 1;
        }
        shortcut = convBn(sx, outCh, `${name}_down`, { kernel: 1, stride: sStride });
      }
      x = apply(tfl.layers.add({ name: `${name}_add` }), [branch, shortcut]);
      x = apply(tfl.layers.reLU({ name: `${name}_out` }), x);
      inCh = outCh;
    }
    stages.push(x);
  });
  let f = apply(tfl.layers.globalAveragePooling2d({ name: 'gap' }), x);
  f = hooks.neck.call(f, { model: cfg.name, stages, name: 'neck' });
  const out = apply(tfl.layers.dense({ units: spec.numClasses, name: 'logits' }), f);
  return tfl.model({ inputs: input, outputs: out, name: cfg.name });
}
