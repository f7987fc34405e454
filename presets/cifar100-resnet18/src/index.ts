import { definePreset } from '@tricks/core';

/** CIFAR-100 training-set channel statistics (the usual normalization constants). */
export const CIFAR100_MEAN = [0.5071, 0.4865, 0.4409];
export const CIFAR100_STD = [0.2673, 0.2564, 0.2762];

/**
 * The CIFAR-100 ResNet-18 recipe as an ablation ladder. ResNet-18 with the CIFAR stem (3x3/1 conv, no
 * max-pool), SGD momentum 0.9, lr 0.1, weight decay 5e-4, batch 128, 200 epochs; step LR (x0.2 at epochs 60,
 * 120, 160) until the rung that switches to cosine. Needs the data: --data cifar100:DIR (train.bin, test.bin).
 * The distillation rung needs a ResNet-50 teacher: `tricks ablate` trains one (the recipe of the rung before kd, resnet50-cifar),
 * or pass --teacher DIR; `tricks train` needs --plugin 'kd={"teacher":"DIR"}'.
 */
export default definePreset({
  name: 'cifar100-resnet18',
  description:
    'ResNet-18 on CIFAR-100, 200 epochs; ladder: baseline, + AutoAugment, + SE blocks, + label smoothing 0.1 and cosine LR, + distillation from a ResNet-50',
  settings: {
    data: 'cifar100',
    model: { name: 'resnet18-cifar' },
    epochs: 200,
    batchSize: 128,
    optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 5e-4 },
    schedule: { name: 'multistep', milestones: [60, 120, 160], gamma: 0.2 },
  },
  plugins: [['augment', { preset: 'cifar', normalize: { mean: CIFAR100_MEAN, std: CIFAR100_STD } }]],
  ladder: [
    { name: 'baseline' },
    { name: '+ AutoAugment', plugins: [['autoaugment', { policy: 'cifar10' }]] },
    { name: '+ SE blocks', plugins: [['se-block', { reduction: 16 }]] },
    { name: '+ label smoothing, cosine LR', plugins: [['label-smoothing', { epsilon: 0.1 }]], settings: { schedule: { name: 'cosine' } } },
    { name: '+ distillation (ResNet-50)', plugins: [['kd', { teacherModel: { name: 'resnet50-cifar' }, temperature: 4, alpha: 0.9 }]] },
  ],
});
