import * as tfl from '@tensorflow/tfjs-layers';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import { TricksError } from '@tricks/core';
import { HardSwish } from './runtime.js';

export type L = SymbolicTensor;
export const apply = (layer: tfl.layers.Layer, x: L | L[]) => layer.apply(x) as L;

export type Act = 'relu' | 'hswish' | 'swish' | 'none';

export function activation(x: L, act: Act, name: string): L {
  if (act === 'none') return x;
  if (act === 'relu') return apply(tfl.layers.reLU({ name }), x);
  if (act === 'hswish') return apply(new HardSwish({ name }), x);
  return apply(tfl.layers.activation({ activation: 'swish', name }), x);
}

/**
 * 'same': TF-style padding (asymmetric at stride 2: the extra pixel at the end). 'torch': PyTorch's symmetric
 * padding k/2, so that a model holding torchvision's weights computes torchvision's outputs: a strided conv
 * becomes ZeroPadding2D + a 'valid' conv (at stride 1 the two paddings agree and nothing changes).
 */
export type Padding = 'same' | 'torch';
export const PADDINGS: Padding[] = ['same', 'torch'];

/** The model option `padding` ('same' by default), checked. */
export const paddingOption = (options: Record<string, unknown> | undefined, model: string): Padding =>
  option<Padding>(options, 'padding', 'same', model, (v) => PADDINGS.includes(v as Padding), "'same' | 'torch'");

/** ZeroPadding2D(k/2) before a strided layer when padding is 'torch' (and the padding its layer then takes). */
export function torchPad(x: L, kernel: number, stride: number, padding: Padding | undefined, name: string): [L, 'same' | 'valid'] {
  if (padding !== 'torch' || stride === 1 || kernel === 1) return [x, 'same'];
  const p = Math.floor(kernel / 2);
  const padded = apply(
    tfl.layers.zeroPadding2d({
      padding: [
        [p, p],
        [p, p],
      ],
      name,
    }),
    x,
  );
  return [padded, 'valid'];
}

export interface ConvBnArgs {
  kernel?: number;
  stride?: number;
  /** BN momentum in the tfjs/Keras sense (PyTorch's 0.1 is 0.9 here). */
  momentum?: number;
  epsilon?: number;
  act?: Act;
  /** Start the BN scale at 0 (zero-gamma). */
  zeroGamma?: boolean;
  depthwise?: boolean;
  /** 'same' (default) or 'torch' (see Padding). */
  padding?: Padding;
}

/**
 * conv (no bias, padding 'same') + BatchNorm + activation, named `${name}_conv`, `${name}_bn`, `${name}_act`
 * (with padding 'torch' a strided conv is preceded by `${name}_pad`).
 */
export function convBn(x: L, filters: number, name: string, a: ConvBnArgs = {}): L {
  const kernelSize = a.kernel ?? 3;
  const strides = a.stride ?? 1;
  let padding: 'same' | 'valid';
  [x, padding] = torchPad(x, kernelSize, strides, a.padding, `${name}_pad`);
  x = a.depthwise
    ? apply(
        tfl.layers.depthwiseConv2d({
          kernelSize,
          strides,
          padding,
          useBias: false,
          depthwiseInitializer: 'heNormal',
          name: `${name}_conv`,
        }),
        x,
      )
    : apply(
        tfl.layers.conv2d({
          filters,
          kernelSize,
          strides,
          padding,
          useBias: false,
          kernelInitializer: 'heNormal',
          name: `${name}_conv`,
        }),
        x,
      );
  x = apply(
    tfl.layers.batchNormalization({
      momentum: a.momentum ?? 0.9,
      epsilon: a.epsilon ?? 1e-5,
      gammaInitializer: a.zeroGamma ? 'zeros' : 'ones',
      name: `${name}_bn`,
    }),
    x,
  );
  return activation(x, a.act ?? 'none', `${name}_act`);
}

/** Reads a model option with a type check; a wrong one is a TricksError naming the option. */
export function option<T>(
  options: Record<string, unknown> | undefined,
  key: string,
  fallback: T,
  model: string,
  check?: (v: unknown) => boolean,
  expect?: string,
): T {
  const v = options?.[key];
  if (v === undefined) return fallback;
  const ok = check ? check(v) : typeof v === typeof fallback;
  if (!ok) throw new TricksError(`model ${model}: option "${key}" is ${JSON.stringify(v)}`, `expected ${expect ?? typeof fallback}`);
  return v as T;
}

export function checkOptions(options: Record<string, unknown> | undefined, allowed: string[], model: string): void {
  for (const k of Object.keys(options ?? {})) {
    if (!allowed.includes(k))
      throw new TricksError(`model ${model}: unknown option "${k}"`, `options of ${model}: ${allowed.join(', ') || '(none)'}`);
  }
}

/** torchvision's _make_divisible: round to a multiple of `divisor`, never below 90% of v. */
export function makeDivisible(v: number, divisor = 8, min = divisor): number {
  let n = Math.max(min, Math.floor(v + divisor / 2) - (Math.floor(v + divisor / 2) % divisor));
  if (n < 0.9 * v) n += divisor;
  return n;
}

/** Squeeze-and-excitation as torchvision.ops.SqueezeExcitation: GAP, 1x1 (dense) down, act, up, gate, scale. */
export function squeezeExcite(
  x: L,
  channels: number,
  squeeze: number,
  name: string,
  act: Act,
  gate: 'sigmoid' | 'hsigmoid',
  gateLayer?: () => tfl.layers.Layer,
): L {
  let s = apply(tfl.layers.globalAveragePooling2d({ name: `${name}_gap` }), x);
  s = apply(tfl.layers.reshape({ targetShape: [1, 1, channels], name: `${name}_reshape` }), s);
  s = apply(tfl.layers.conv2d({ filters: squeeze, kernelSize: 1, name: `${name}_fc1` }), s);
  s = activation(s, act, `${name}_act`);
  s = apply(tfl.layers.conv2d({ filters: channels, kernelSize: 1, name: `${name}_fc2` }), s);
  s = gate === 'sigmoid' ? apply(tfl.layers.activation({ activation: 'sigmoid', name: `${name}_gate` }), s) : apply(gateLayer!(), s);
  return apply(tfl.layers.multiply({ name: `${name}_scale` }), [x, s]);
}
