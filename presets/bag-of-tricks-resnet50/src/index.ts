import { definePreset } from '@tricks/core';

/**
 * "Bag of Tricks for Image Classification with Convolutional Neural Networks" (He et al., CVPR 2019) on
 * ImageNet-style folders (--data folder:DIR with class sub-folders, or DIR/train and DIR/val), 224x224.
 * Rung 1 is the paper's baseline (ResNet-50, batch 256, lr 0.1, lr / 10 at epochs 30, 60, 90 of 120,
 * random resized crop + flip + colour jitter); each later rung adds the paper's refinements in order.
 * The linear warm-up of the paper goes with the cosine rung: core's cosine schedule carries the warm-up
 * (the step schedule has none). Distillation needs a teacher: `tricks ablate` trains one (the recipe of the rung before kd,
 * ResNeXt-50 32x4d, the largest backbone of the zoo; the paper used a ResNet-152-D), or pass --teacher DIR.
 */
export default definePreset({
  name: 'bag-of-tricks-resnet50',
  description:
    'He et al. 2019 on ImageNet-style folders: ResNet-50 baseline, + ResNet-D, + linear LR scaling (batch 1024), + zero-gamma and no bias decay, + cosine with 5 warm-up epochs, + label smoothing 0.1, + mixup 0.2, + distillation',
  settings: {
    data: 'folder',
    dataOptions: { size: 224 },
    model: { name: 'resnet50' },
    epochs: 120,
    batchSize: 256,
    evalBatchSize: 256,
    optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9, nesterov: false, weightDecay: 1e-4 },
    schedule: { name: 'multistep', milestones: [30, 60, 90], gamma: 0.1 },
  },
  plugins: [['augment', { preset: 'imagenet', colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4 }, normalize: 'imagenet' }]],
  ladder: [
    { name: 'baseline (ResNet-50)' },
    { name: '+ ResNet-D', settings: { model: { name: 'resnet50-d' } } },
    // lr = 0.1 x 1024 / 256 = 0.4
    { name: '+ linear LR scaling, batch 1024', plugins: [['lr-scaling', { referenceBatchSize: 256 }]], settings: { batchSize: 1024 } },
    {
      name: '+ zero-gamma, no bias decay',
      plugins: [['no-bias-decay', { bias: true, norm: true }]],
      settings: { model: { name: 'resnet50-d', options: { zeroGamma: true } } },
    },
    { name: '+ cosine LR, 5 warm-up epochs', settings: { schedule: { name: 'cosine', warmupEpochs: 5 } } },
    { name: '+ label smoothing', plugins: [['label-smoothing', { epsilon: 0.1 }]] },
    // The paper trains 200 epochs with mixup instead of 120.
    { name: '+ mixup', plugins: [['mixup', { alpha: 0.2 }]], settings: { epochs: 200 } },
    { name: '+ distillation', plugins: [['kd', { teacherModel: { name: 'resnext50-32x4d' }, temperature: 20, alpha: 0.5 }]] },
  ],
});
