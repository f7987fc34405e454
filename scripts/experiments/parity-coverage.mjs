// The parity harness's coverage ladder: the fashion-mnist preset's recipe (small-cnn width 16, SGD Nesterov lr 0.05,
// weight decay 5e-4) with one trick the PyTorch twin (core/lab/py/parity_twin.py) mirrors added per rung, to check
// each against its torchvision/timm counterpart. Settings fixed before any run.
//   npm run parity -- --preset scripts/experiments/parity-coverage.mjs --seeds 3 --epochs 3 --limit-train 4000 --batch-size 32 --jobs 2 --out runs/parity-coverage
export default {
  name: 'parity-coverage',
  description:
    'Fashion-MNIST, small-cnn width 16; ladder: baseline, + RandomResizedCrop and flip, + ColorJitter, + CutMix, + OneCycle, + AutoAugment',
  settings: {
    data: 'fashion-mnist',
    model: { name: 'small-cnn', options: { width: 16 } },
    epochs: 3,
    batchSize: 32,
    evalBatchSize: 500,
    optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
    schedule: { name: 'constant' },
  },
  ladder: [
    { name: 'baseline', plugins: [] },
    {
      name: '+ RandomResizedCrop',
      plugins: [['augment', { preset: 'none', randomResizedCrop: { scale: [0.35, 1] }, flip: 0.5, normalize: false }]],
    },
    {
      name: '+ ColorJitter',
      plugins: [['augment', { preset: 'none', colorJitter: { brightness: 0.4, contrast: 0.4 }, normalize: false }, 'augment-colour']],
    },
    { name: '+ CutMix', plugins: [['cutmix', { alpha: 1.0 }]] },
    { name: '+ OneCycle', settings: { schedule: { name: 'onecycle' } } },
    { name: '+ AutoAugment', plugins: [['autoaugment', { policy: 'cifar10' }]] },
  ],
};
