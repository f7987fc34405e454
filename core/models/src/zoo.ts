import type { ModelRegistry } from '@tricks/core';
import { resnet, type ResNetVariant } from './resnet.js';
import { mobilenetV3 } from './mobilenetv3.js';
import { efficientNetB0 } from './efficientnet.js';
import { swin, SWIN_CIFAR, SWIN_T } from './swin.js';

const RESNETS = { 18: ['basic', [2, 2, 2, 2]], 34: ['basic', [3, 4, 6, 3]], 50: ['bottleneck', [3, 4, 6, 3]] } as const;
const VARIANT_TEXT: Record<ResNetVariant, string> = {
  a: '',
  b: ', ResNet-B (stride on the 3x3 conv)',
  c: ', ResNet-C (B + deep stem of three 3x3 convs)',
  d: ', ResNet-D (C + avg-pool before the 1x1 down-sampling conv)',
};

/** Registers the ImageNet-style model zoo: ResNet-18/34/50 (+ B/C/D variants, CIFAR stems), ResNeXt-50, MobileNetV3, EfficientNet-B0, Swin. */
export function registerZoo(registry: ModelRegistry): void {
  for (const [depth, [block, layers]] of Object.entries(RESNETS)) {
    for (const v of ['a', 'b', 'c', 'd'] as ResNetVariant[]) {
      for (const stem of ['imagenet', 'cifar'] as const) {
        const name = `resnet${depth}${v === 'a' ? '' : `-${v}`}${stem === 'cifar' ? '-cifar' : ''}`;
        const stemText = stem === 'cifar' ? ', CIFAR stem (3x3/1, no max-pool)' : '';
        registry.register(name, `ResNet-${depth} (He et al. 2016)${VARIANT_TEXT[v]}${stemText}; options: variant, zeroGamma`, (s, h) =>
          resnet({ name, block, layers: [...layers], stem, variant: v }, s, h),
        );
      }
    }
  }
  for (const stem of ['imagenet', 'cifar'] as const) {
    const name = `resnext50-32x4d${stem === 'cifar' ? '-cifar' : ''}`;
    registry.register(
      name,
      `ResNeXt-50 32x4d (Xie et al. 2017), grouped 3x3 as one depthwise conv + group sum${stem === 'cifar' ? ', CIFAR stem' : ''}; options: variant, zeroGamma, groupedConv`,
      (s, h) => resnet({ name, block: 'bottleneck', layers: [3, 4, 6, 3], stem, variant: 'b', groups: 32, widthPerGroup: 4 }, s, h),
    );
  }
  registry.register(
    'mobilenetv3-large',
    'MobileNetV3-Large (Howard et al. 2019): h-swish, SE, the published block table; option dropout',
    (s, h) => mobilenetV3('large', s, h),
  );
  registry.register(
    'mobilenetv3-small',
    'MobileNetV3-Small (Howard et al. 2019): h-swish, SE, the published block table; option dropout',
    (s, h) => mobilenetV3('small', s, h),
  );
  registry.register(
    'efficientnet-b0',
    'EfficientNet-B0 (Tan & Le 2019): MBConv, SE, swish, stochastic depth; options dropout, stochasticDepth',
    efficientNetB0,
  );
  registry.register(
    'swin-t',
    'Swin-T (Liu et al. 2021): shifted window attention, relative position bias, patch merging; 224x224 inputs',
    (s, h) => swin(SWIN_T, s, h),
  );
  registry.register('swin-cifar', 'Swin for 32x32 inputs: 2x2 patches, 4x4 windows, 3 stages 96-192-384, depths 2-6-2', (s, h) =>
    swin(SWIN_CIFAR, s, h),
  );
}
