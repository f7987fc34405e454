import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import type { BuildHooks, ModelSpec } from '@tricks/core';

type L = SymbolicTensor;
const apply = (layer: tfl.layers.Layer, x: L | L[]) => layer.apply(x) as L;

function convBn(x: L, filters: number, stride: number, name: string, kernelSize = 3): L {
  x = apply(
    tfl.layers.conv2d({
      filters,
      kernelSize,
      strides: stride,
      padding: 'same',
      useBias: false,
      kernelInitializer: 'heNormal',
      name: `${name}_conv`,
    }),
    x,
  );
  return apply(tfl.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5, name: `${name}_bn` }), x);
}

/**
 * CIFAR ResNet (He et al. 2016, section 4.2): a 3x3 stem of 16 channels, three stages of
 * (depth-2)/6 basic blocks with 16, 32, 64 channels (times `width`), stride 2 at stages 2 and 3,
 * 1x1 projection shortcuts where the shape changes. Every residual branch passes the block hook.
 */
export function resnetCifar(depth: number, spec: ModelSpec, hooks: BuildHooks): LayersModel {
  if ((depth - 2) % 6 !== 0) throw new Error(`CIFAR ResNet depth must be 6n+2, got ${depth}`);
  const n = (depth - 2) / 6;
  const width = Number(spec.options?.width ?? 1);
  const model = `resnet${depth}`;
  const input = tfl.input({ shape: spec.inputShape, name: 'input' });
  let x = apply(tfl.layers.reLU({ name: 'stem_relu' }), convBn(input as L, 16 * width, 1, 'stem'));
  let inCh = 16 * width;
  const stages: L[] = [];
  [16, 32, 64].forEach((base, s) => {
    const ch = base * width;
    for (let b = 0; b < n; b++) {
      const stride = s > 0 && b === 0 ? 2 : 1;
      const name = `s${s + 1}b${b + 1}`;
      let branch = apply(tfl.layers.reLU({ name: `${name}_relu1` }), convBn(x, ch, stride, `${name}_1`));
      branch = convBn(branch, ch, 1, `${name}_2`);
      branch = hooks.block.call(branch, { model, kind: 'basic', stage: s + 1, index: b, inChannels: inCh, outChannels: ch, name });
      const shortcut = stride !== 1 || inCh !== ch ? convBn(x, ch, stride, `${name}_down`, 1) : x;
      x = apply(tfl.layers.reLU({ name: `${name}_out` }), apply(tfl.layers.add({ name: `${name}_add` }), [branch, shortcut]));
      inCh = ch;
    }
    stages.push(x);
  });
  let f = apply(tfl.layers.globalAveragePooling2d({ name: 'gap' }), x);
  f = hooks.neck.call(f, { model, stages, name: 'neck' });
  const out = apply(tfl.layers.dense({ units: spec.numClasses, name: 'logits' }), f);
  return tfl.model({ inputs: input, outputs: out, name: model });
}
