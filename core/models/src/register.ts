import { ContainerModule } from 'inversify';
import { definePlugin, TOKENS, type ModelRegistry } from '@tricks/core';
import { smallCnn } from './small-cnn.js';
import { resnetCifar } from './resnet-cifar.js';
import { registerZoo } from './zoo.js';

/** Registers every model of the zoo: small-cnn, the CIFAR ResNets and the ImageNet-style backbones. */
export function registerModels(registry: ModelRegistry): ModelRegistry {
  registry.register(
    'small-cnn',
    'two 3x3 conv layers, max-pooling and a dense head on the flattened maps (<= 64 px) or their global average (quick start)',
    smallCnn,
  );
  for (const depth of [20, 32, 44, 56, 110]) {
    registry.register(
      `resnet${depth}`,
      `CIFAR ResNet-${depth} (He et al. 2016, 3 stages of basic blocks, 16-32-64 channels; option width multiplies them)`,
      (s, h) => resnetCifar(depth, s, h),
    );
  }
  registerZoo(registry);
  return registry;
}

/** Adds the zoo to the container's ModelRegistry when it is first resolved. */
export const modelsModule = () =>
  new ContainerModule(({ onActivation }) => {
    onActivation<ModelRegistry>(TOKENS.Models, (_ctx, registry) => registerModels(registry));
  });

/** The built-in plugin that brings the model zoo into a trainer's container. */
export const modelsBuiltin = definePlugin({
  name: 'tricks:models',
  description: 'the model zoo (small-cnn, CIFAR ResNets, ResNet/ResNeXt, MobileNetV3, EfficientNet, Swin)',
  apply() {},
  modules: () => [modelsModule()],
});
