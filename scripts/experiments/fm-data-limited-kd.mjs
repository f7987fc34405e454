// Issue 18, part 3: kd from a teacher clearly stronger than the student. The data-limited ladder
// (fm-data-limited.mjs: 5,000 training images, 30 epochs, small-cnn width 16), its last rung distilling from a
// ResNet-20 that saw all 60,000 training images: the recipe of rung 5 (augmentation, cosine, label smoothing,
// mixup) for 5 epochs (a budget fixed by this machine's time before any run, not tuned on the test set). The
// student still trains on its 5,000 images: the regime of distilling from a model trained on more data.
//   node core/cli/bin/tricks.js ablate --preset scripts/experiments/fm-data-limited-kd.mjs --rungs 6 --seeds 3 --out runs/fm-dl-kd
//   npm run parity -- --preset scripts/experiments/fm-data-limited-kd.mjs --rungs 6 --seeds 3 --epochs 30 --limit-train 5000 --batch-size 128 ...
import base from './fm-data-limited.mjs';

export default {
  ...base,
  name: 'fm-data-limited-kd',
  description: `${base.description.replace(/, \+ kd from ResNet-20$/, '')}, + kd from a ResNet-20 trained on all 60,000 images`,
  ladder: [
    ...base.ladder.slice(0, 5),
    {
      name: '+ kd (ResNet-20, 60k images)',
      plugins: [['kd', { teacherModel: { name: 'resnet20' }, temperature: 2, alpha: 0.7 }]],
      teacherSettings: { limit: { train: 60000 }, epochs: 5 },
    },
  ],
};
