import { definePreset } from '@tricks/core';

/**
 * A model for phones and browsers: MobileNetV3-Large (Howard et al. 2019) on ImageNet-style folders
 * (--data folder:DIR), 224x224, SGD with cosine LR. The ladder adds distillation from a larger teacher
 * (ResNet-50, trained by `tricks ablate` with the recipe of the rung before kd, or --teacher DIR), then gradual structured
 * pruning of 30 % of the channels (AGP, L1), then quantization-aware training, and ends in an int8 export
 * (ONNX QDQ int8, per-channel weights, from the QAT grid) next to the float tfjs model.
 */
export default definePreset({
  name: 'mobile',
  description: 'MobileNetV3-Large: + distillation from a ResNet-50, + 30 % structured pruning (AGP), + QAT with an int8 ONNX export',
  settings: {
    data: 'folder',
    dataOptions: { size: 224 },
    model: { name: 'mobilenetv3-large' },
    epochs: 60,
    batchSize: 128,
    optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 4e-5 },
    schedule: { name: 'cosine', warmupEpochs: 1 },
  },
  plugins: [['augment', { preset: 'imagenet', normalize: 'imagenet' }]],
  ladder: [
    { name: 'baseline (MobileNetV3-L)' },
    { name: '+ distillation (ResNet-50)', plugins: [['kd', { teacherModel: { name: 'resnet50' }, temperature: 4, alpha: 0.7 }]] },
    { name: '+ pruning 30 %', plugins: [['prune', { criterion: 'l1', ratio: 0.3, schedule: 'gradual', roundTo: 8 }]] },
    {
      name: '+ QAT, int8 export',
      plugins: [['qat', { startEpoch: 0, bits: 8, perChannel: true }]],
      settings: { export: { formats: ['tfjs', 'onnx-int8'] } },
    },
  ],
});
