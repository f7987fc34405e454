import * as tfl from '@tensorflow/tfjs-layers';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import { definePlugin, STAGE_MIX, TricksError, type NeckInfo } from '@tricks/core';

export const PLUGIN_NAME = 'fpn';
/** Architecture taps have no ordering needs of their own. */
export const STAGE = STAGE_MIX;

export interface FpnOptions {
  /** Channels of every pyramid level (FPN's d). */
  channels: number;
  /** How many of the last stage outputs to fuse (the lowest-resolution ones); at least 2. */
  levels: number;
  /** A 3x3 conv on every merged level (FPN's anti-aliasing conv, torchvision's layer_blocks). */
  smooth: boolean;
  /** Concatenate the backbone's own pooled features with the pooled levels. */
  keepPooled: boolean;
  /**
   * BatchNorm after every lateral and smoothing conv (whose bias it replaces), as torchvision's
   * FeaturePyramidNetwork(norm_layer=BatchNorm2d). Without it the pyramid adds unnormalized features to the
   * classifier's input, and SGD at lr 0.05 diverged within 15 steps (resnet20, Fashion-MNIST).
   */
  norm: boolean;
}

type L = SymbolicTensor;
const apply = (layer: tfl.layers.Layer, x: L | L[]) => layer.apply(x) as L;

/** Nearest-neighbour upsampling of x to h x w: repeat by ceil(h / x.h), then crop the bottom/right excess. */
function upsampleTo(x: L, h: number, w: number, name: string): L {
  const [xh, xw] = [x.shape[1] as number, x.shape[2] as number];
  if (xh === h && xw === w) return x;
  const fh = Math.ceil(h / xh);
  const fw = Math.ceil(w / xw);
  if (fh * xh - h >= fh || fw * xw - w >= fw)
    throw new TricksError(
      `fpn: cannot upsample a ${xh}x${xw} level to ${h}x${w}`,
      'the stages must shrink by integer factors (as every zoo backbone does)',
    );
  let y = apply(tfl.layers.upSampling2d({ size: [fh, fw], name: `${name}_up` }), x);
  if (fh * xh !== h || fw * xw !== w)
    y = apply(
      tfl.layers.cropping2D({
        cropping: [
          [0, fh * xh - h],
          [0, fw * xw - w],
        ],
        name: `${name}_crop`,
      }),
      y,
    );
  return y;
}

/**
 * The feature pyramid of Lin et al. 2017 (Fig. 3) over stage outputs, highest resolution first: a 1x1 lateral
 * conv (with bias) on each, then from the top down each lateral plus the nearest-upsampled level above, then an
 * optional 3x3 conv (with bias) on each merged level; with `norm`, BatchNorm follows each conv instead of its bias. Returns the levels in the order of `stages`. Equals
 * torchvision.ops.FeaturePyramidNetwork (whose interpolate(size=) matches repeat-and-crop for the exact and
 * ceil-halved sizes that strided backbones give).
 */
export function pyramid(stages: L[], o: Pick<FpnOptions, 'channels' | 'smooth'> & { norm?: boolean }, prefix = 'fpn'): L[] {
  const conv = (x: L, kernelSize: number, name: string) => {
    const y = apply(tfl.layers.conv2d({ filters: o.channels, kernelSize, padding: 'same', useBias: !o.norm, name }), x);
    return o.norm ? apply(tfl.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5, name: `${name}_bn` }), y) : y;
  };
  const lateral = stages.map((s, i) => conv(s, 1, `${prefix}_lateral${i + 1}`));
  const merged: L[] = new Array(stages.length);
  merged[stages.length - 1] = lateral[stages.length - 1];
  for (let i = stages.length - 2; i >= 0; i--) {
    const [h, w] = [lateral[i].shape[1] as number, lateral[i].shape[2] as number];
    const up = upsampleTo(merged[i + 1], h, w, `${prefix}_td${i + 1}`);
    merged[i] = apply(tfl.layers.add({ name: `${prefix}_add${i + 1}` }), [lateral[i], up]);
  }
  return o.smooth ? merged.map((m, i) => conv(m, 3, `${prefix}_smooth${i + 1}`)) : merged;
}

/** The neck tap: the pyramid over the last `levels` stages, each level pooled, concatenated (after the features). */
export function fpnNeck(features: L, info: NeckInfo, o: FpnOptions): L {
  const stages = info.stages.filter((s) => s.shape.length === 4);
  if (stages.length < 2 || stages.length !== info.stages.length) {
    throw new TricksError(
      `fpn: ${info.model} gives ${info.stages.length} stage outputs (${stages.length} of them [batch, h, w, c])`,
      'fpn needs at least two 4-D stage outputs from the neck hook',
    );
  }
  if (features.shape.length !== 2 && o.keepPooled)
    throw new TricksError(
      `fpn: the neck features of ${info.model} have shape ${JSON.stringify(features.shape)}`,
      'set keepPooled: false, or use a backbone whose neck gives [batch, features]',
    );
  const used = stages.slice(-Math.min(o.levels, stages.length));
  const levels = pyramid(used, o, `${info.name}_fpn`);
  const pooled = levels.map((p, i) => apply(tfl.layers.globalAveragePooling2d({ name: `${info.name}_fpn_gap${i + 1}` }), p));
  const parts = o.keepPooled ? [features, ...pooled] : pooled;
  return parts.length === 1 ? parts[0] : apply(tfl.layers.concatenate({ name: `${info.name}_fpn_concat` }), parts);
}

export default definePlugin<FpnOptions>({
  name: PLUGIN_NAME,
  description:
    'FPN for classification: lateral 1x1 convs, top-down nearest upsample-and-add, 3x3 smoothing, every level pooled and concatenated before the classifier',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      channels: { type: 'integer', minimum: 1, default: 128 },
      levels: { type: 'integer', minimum: 2, maximum: 8, default: 3 },
      smooth: { type: 'boolean', default: true },
      keepPooled: { type: 'boolean', default: true },
      norm: { type: 'boolean', default: true },
    },
  },
  apply(api, options) {
    api.hooks.neck.tap({ name: PLUGIN_NAME, stage: STAGE }, (features, info) => fpnNeck(features, info, options));
  },
});
