// ResNet-18 with the CIFAR stem (3x3 stride-1 conv, no max-pool), BasicBlocks [2, 2, 2, 2] of
// 64-128-256-512 channels, 1x1 projection shortcuts, as torchvision's resnet18 with
// conv1 = Conv2d(3, 64, 3, 1, 1) and maxpool = Identity (the PyTorch reference of the benchmark).
import * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';

type L = SymbolicTensor;
const apply = (layer: tfl.layers.Layer, x: L | L[]): L => layer.apply(x) as L;

function convBn(x: L, filters: number, kernelSize: number, strides: number, name: string): L {
  x = apply(
    tfl.layers.conv2d({
      filters,
      kernelSize,
      strides,
      padding: 'same',
      useBias: false,
      kernelInitializer: 'heNormal',
      name: `${name}_conv`,
    }),
    x,
  );
  return apply(tfl.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5, name: `${name}_bn` }), x);
}

export function resnet18Cifar(opts: { numClasses?: number; inputShape?: [number, number, number] } = {}): LayersModel {
  const input = tfl.input({ shape: opts.inputShape ?? [32, 32, 3], name: 'input' });
  let x = apply(tfl.layers.reLU({ name: 'stem_relu' }), convBn(input as L, 64, 3, 1, 'stem'));
  let inCh = 64;
  [64, 128, 256, 512].forEach((ch, s) => {
    for (let b = 0; b < 2; b++) {
      const stride = s > 0 && b === 0 ? 2 : 1;
      const name = `layer${s + 1}_${b}`;
      let y = apply(tfl.layers.reLU({ name: `${name}_relu1` }), convBn(x, ch, 3, stride, `${name}_1`));
      y = convBn(y, ch, 3, 1, `${name}_2`);
      const shortcut = stride !== 1 || inCh !== ch ? convBn(x, ch, 1, stride, `${name}_down`) : x;
      x = apply(tfl.layers.reLU({ name: `${name}_out` }), apply(tfl.layers.add({ name: `${name}_add` }), [y, shortcut]));
      inCh = ch;
    }
  });
  x = apply(tfl.layers.globalAveragePooling2d({ name: 'gap' }), x);
  const out = apply(tfl.layers.dense({ units: opts.numClasses ?? 100, name: 'fc' }), x);
  return tfl.model({ inputs: input, outputs: out, name: 'resnet18_cifar' });
}
