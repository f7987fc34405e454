// Issue 18, part 3: a ladder where the tricks should help. The fashion-mnist preset's recipe (small-cnn width 16,
// SGD Nesterov lr 0.05, weight decay 5e-4, batch 128) in the data-limited regime: 5,000 training images, 30 epochs,
// where overfitting is what augmentation, cosine, label smoothing and mixup address; then distillation from a
// ResNet-20 teacher that `tricks ablate` trains with the recipe of rung 5 (30 epochs, same images).
// Every setting is the preset's or the reference's default, fixed before any run (none chosen on the test set).
//   node core/cli/bin/tricks.js ablate --preset scripts/experiments/fm-data-limited.mjs --seeds 3 --jobs 2 --out runs/fm-data-limited
//   npm run parity -- --preset scripts/experiments/fm-data-limited.mjs --epochs 30 --limit-train 5000 --batch-size 128 ...
export default {
  name: 'fm-data-limited',
  description:
    'Fashion-MNIST, 5,000 training images, 30 epochs, small-cnn width 16; ladder: baseline, + augmentation, + cosine, + label smoothing, + mixup, + kd from ResNet-20',
  settings: {
    data: 'fashion-mnist',
    model: { name: 'small-cnn', options: { width: 16 } },
    limit: { train: 5000 },
    epochs: 30,
    batchSize: 128,
    evalBatchSize: 500,
    optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
    schedule: { name: 'constant' },
  },
  ladder: [
    { name: 'baseline', plugins: [] },
    { name: '+ augmentation', plugins: [['augment', { preset: 'none', padCrop: 2, flip: 0.5, normalize: false }]] },
    { name: '+ cosine LR', settings: { schedule: { name: 'cosine' } } },
    { name: '+ label smoothing', plugins: [['label-smoothing', { epsilon: 0.1 }]] },
    { name: '+ mixup', plugins: [['mixup', { alpha: 0.2 }]] },
    { name: '+ kd (ResNet-20)', plugins: [['kd', { teacherModel: { name: 'resnet20' }, temperature: 2, alpha: 0.7 }]] },
  ],
};
