import { definePreset } from '@tricks/core';

/**
 * The reference recipe every trick is measured against: a CIFAR ResNet (He et al. 2016, ResNet-20) with SGD
 * (momentum 0.9, lr 0.1, weight decay 1e-4, batch 128), the step schedule of the paper (lr / 10 at 50 % and
 * 75 % of training: epochs 82 and 123 of 164) and standard augmentation (pad-4 crop and horizontal flip for
 * images up to 64 px, random resized crop and flip above; per-channel normalization).
 */
export default definePreset({
  name: 'baseline',
  description:
    'ResNet-20 (He et al. 2016), SGD momentum 0.9, lr 0.1 / 10 at epochs 82 and 123 of 164, pad-crop + flip; the reference for ablations',
  settings: {
    model: { name: 'resnet20' },
    epochs: 164,
    batchSize: 128,
    optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4 },
    schedule: { name: 'multistep', milestones: [82, 123], gamma: 0.1 },
  },
  plugins: [['augment', { preset: 'auto' }]],
  // One rung: `tricks ablate --preset baseline` measures the seed-to-seed spread of the reference.
  ladder: [{ name: 'baseline' }],
});
