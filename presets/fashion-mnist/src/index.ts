import { definePreset } from '@tricks/core';

/**
 * Fashion-MNIST sized for a 2-core CPU: the quick-start CNN at half width (two 3x3 conv + BN layers, 16 and 32
 * channels, dense head) trained with SGD, and a ladder that adds one trick per step. Run the ladder with
 * `tricks ablate --preset fashion-mnist --data fashion-mnist --seeds 3 --out runs/fm-ablation`.
 */
export default definePreset({
  name: 'fashion-mnist',
  description:
    'small CNN on Fashion-MNIST for a 2-core CPU; ladder: baseline, + flip/crop augmentation, + cosine LR, + label smoothing, + mixup',
  settings: {
    data: 'fashion-mnist',
    model: { name: 'small-cnn', options: { width: 16 } },
    epochs: 10,
    batchSize: 128,
    evalBatchSize: 500,
    optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
    schedule: { name: 'constant' },
  },
  ladder: [
    { name: 'baseline', plugins: [] },
    // Clothes are left-right symmetric; a 2-pixel shift is the 28-px analogue of CIFAR's 4-pixel pad-crop.
    { name: '+ augmentation', plugins: [['augment', { preset: 'none', padCrop: 2, flip: 0.5, normalize: false }]] },
    { name: '+ cosine LR', settings: { schedule: { name: 'cosine' } } },
    { name: '+ label smoothing', plugins: [['label-smoothing', { epsilon: 0.1 }]] },
    { name: '+ mixup', plugins: [['mixup', { alpha: 0.2 }]] },
  ],
});
