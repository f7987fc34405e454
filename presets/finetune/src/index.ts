import { definePreset } from '@tricks/core';

/**
 * Fine-tuning a pretrained ResNet-18 on a photo folder (--data folder:DIR) at 224x224, as fastai's
 * `fine_tune` does it: the backbone frozen for the first epoch (the new head alone trains), then
 * everything with discriminative lrs (fastai's slice(lr/100, lr) over 3 layer groups, halved), AdamW
 * at 2e-3 with weight decay 0.01 (fastai's defaults), ImageNet-style augmentation with the ImageNet
 * normalization the weights expect, and a cosine schedule with a warmup epoch. The ladder adds label
 * smoothing. Start it from weights: the model must begin pretrained, or freezing only slows training.
 */
export default definePreset({
  name: 'finetune',
  description: "fine-tune a pretrained ResNet-18 (fastai's fine_tune: 1 frozen epoch, discriminative lrs), + label smoothing",
  settings: {
    data: 'folder',
    dataOptions: { size: 224 },
    model: { name: 'resnet18' },
    epochs: 5,
    batchSize: 32,
    optimizer: { name: 'adamw', lr: 2e-3, weightDecay: 0.01 },
    schedule: { name: 'cosine', warmupEpochs: 1 },
  },
  plugins: [
    ['finetune', { freezeEpochs: 1, groups: 3, lrMult: 100 }],
    ['augment', { preset: 'imagenet', normalize: 'imagenet' }],
  ],
  ladder: [
    { name: 'fine-tune (1 frozen epoch, discriminative lrs)' },
    { name: '+ label smoothing', plugins: [['label-smoothing', { epsilon: 0.1 }]] },
  ],
});
