import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, tmp } from './cli-helpers.js';

/** `npm run parity` (scripts/parity.mjs) end to end on a tiny budget: tricks ablate and the PyTorch twin, side by side. */
const python = process.env.TORCH_PYTHON ?? '/usr/bin/python3';
const hasTorch = () => spawnSync(python, ['-c', 'import torch, torchvision'], { encoding: 'utf8' }).status === 0;
const parity = (args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'parity.mjs'), ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('npm run parity', function () {
  this.timeout(300000);

  it('trains two rungs in tricks and in the twin, and writes both tables side by side', function () {
    if (!hasTorch() || !existsSync('/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz')) this.skip();
    const out = join(tmp(), 'parity');
    const r = parity([
      '--preset',
      'fashion-mnist',
      '--rungs',
      '1-2',
      '--seeds',
      '1',
      '--epochs',
      '1',
      '--limit-train',
      '320',
      '--out',
      out,
    ]);
    expect(r.code, r.err + r.out).to.equal(0);
    const res = JSON.parse(readFileSync(join(out, 'parity.json'), 'utf8'));
    expect(res.tricks.map((x: { ladderStep: number }) => x.ladderStep).sort()).to.deep.equal([0, 1]);
    expect(res.torch.map((x: { ladderStep: number }) => x.ladderStep).sort()).to.deep.equal([0, 1]);
    for (const run of [...res.tricks, ...res.torch]) {
      expect(run.epochs).to.have.length(1);
      // 10 steps of batch 32 on 320 images: well above chance (0.1) in both frameworks
      expect(run.top1, `${run.id}`).to.be.within(0.2, 1);
    }
    // the twin trained on tricks' 320-item subset for the steps tricks takes (320 / 32, drop-last)
    for (const run of res.torch) expect([run.trainItems, run.steps]).to.deep.equal([320, 10]);
    const md = readFileSync(join(out, 'parity.md'), 'utf8');
    expect(md).to.match(/\| 1 \| baseline \| baseline \| \d+\.\d\d ± 0\.00 \(n 1\) \| \d+\.\d\d ± 0\.00 \(n 1\) \| [+−]\d+\.\d\d/);
    expect(md).to.match(/\| 2 \| \+ augmentation \| augment\(preset=none, padCrop=2, flip=0\.5, normalize=false\) \|/);
    expect(md).to.contain('# tricks ablate').and.to.contain('# PyTorch twin');
    // resumable: a second call (tricks' finished ablation reused) trains no twin run and reports the same figures,
    // and a line a kill cut short is ignored, not a crash
    appendFileSync(join(out, 'twin-runs.jsonl'), '{"id":"torch-s1-se');
    const again = parity(
      ['--preset', 'fashion-mnist', '--rungs', '1-2', '--seeds', '1', '--epochs', '1', '--limit-train', '320'].concat([
        '--tricks-from',
        join(out, 'tricks'),
        '--out',
        out,
      ]),
    );
    expect(again.code, again.err + again.out).to.equal(0);
    expect(again.out).to.match(/0 to train, 2 done in/);
    const res2 = JSON.parse(readFileSync(join(out, 'parity.json'), 'utf8'));
    expect(res2.torch.map((x: { top1: number }) => x.top1)).to.deep.equal(res.torch.map((x: { top1: number }) => x.top1));
  });

  it('kd: the twin trains the teacher tricks ablate would (the rung before kd, the teacher model) and distils from it', function () {
    if (!hasTorch() || !existsSync('/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz')) this.skip();
    const out = join(tmp(), 'parity-kd');
    const args = ['--preset', 'scripts/experiments/fm-data-limited.mjs', '--rungs', '6', '--seeds', '1', '--epochs', '1'];
    const r = parity([...args, '--limit-train', '640', '--batch-size', '64', '--twin-only', '--out', out]);
    expect(r.code, r.err + r.out).to.equal(0);
    expect(r.out).to.match(/parity: twin teacher: top-1 \d+\.\d\d %/);
    const res = JSON.parse(readFileSync(join(out, 'parity.json'), 'utf8'));
    expect(res.skipped, JSON.stringify(res.skipped)).to.deep.equal([]);
    expect(res.torch.map((x: { ladderStep: number }) => x.ladderStep)).to.deep.equal([5]);
    expect(res.torchTeacher.teacher).to.be.within(0.1, 1);
    // 10 steps of batch 64: the distilled student is above chance
    expect(res.torch[0].top1).to.be.within(0.15, 1);
  });

  it("kd's teacherSettings: the twin's teacher trains on its own subset and epochs (tricks' limit and orders)", function () {
    if (!hasTorch() || !existsSync('/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz')) this.skip();
    const dir = tmp();
    const preset = join(dir, 'kd-more.mjs');
    writeFileSync(
      preset,
      `import base from ${JSON.stringify(join(root, 'scripts/experiments/fm-data-limited.mjs'))};
      export default { ...base, name: 'kd-more', ladder: [base.ladder[0], { name: '+ kd',
        plugins: [['kd', { teacherModel: { name: 'small-cnn', options: { width: 8 } } }]], teacherSettings: { limit: { train: 1280 }, epochs: 2 } }] };`,
    );
    const out = join(dir, 'parity');
    const args = ['--preset', preset, '--rungs', '2', '--seeds', '1', '--epochs', '1', '--limit-train', '640', '--batch-size', '64'];
    const r = parity([...args, '--twin-only', '--out', out]);
    expect(r.code, r.err + r.out).to.equal(0);
    const res = JSON.parse(readFileSync(join(out, 'parity.json'), 'utf8'));
    // the teacher: 1,280 images for 2 epochs of 20 steps; the student: 640 images, 1 epoch of 10 steps
    expect([res.torchTeacher.trainItems, res.torchTeacher.steps]).to.deep.equal([1280, 40]);
    expect([res.torch[0].trainItems, res.torch[0].steps]).to.deep.equal([640, 10]);
  });

  it('--twin dtype=float64: the twin trains in float64 (the same run up to float32 rounding)', function () {
    if (!hasTorch() || !existsSync('/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz')) this.skip();
    const top1 = (twin: string[]) => {
      const out = join(tmp(), 'parity');
      // one step of batch 32: its loss is computed from the initial weights, before any update
      const args = [
        '--preset',
        'fashion-mnist',
        '--rungs',
        '1',
        '--seeds',
        '1',
        '--epochs',
        '1',
        '--limit-train',
        '32',
        '--batch-size',
        '32',
      ];
      const r = parity([...args, '--twin-only', ...twin, '--out', out]);
      expect(r.code, r.err + r.out).to.equal(0);
      const res = JSON.parse(readFileSync(join(out, 'parity.json'), 'utf8'));
      return { twin: res.twin, top1: res.torch[0].top1 as number, loss: res.torch[0].epochs[0].train_loss as number };
    };
    const [f32, f64] = [top1([]), top1(['--twin', 'dtype=float64'])];
    expect(f64.twin).to.deep.equal({ dtype: 'float64' });
    // the same initial weights and batch: the losses agree to float32 rounding, not exactly. (After 10 steps they
    // had drifted 1e-3 apart on AVX2 and 1.3e-3 on AVX-512: rounding grows with training, so one step is compared.)
    expect(f64.loss).to.be.closeTo(f32.loss, 1e-5 * f32.loss);
    expect(f64.loss).to.not.equal(f32.loss);
  });

  it('a user mistake is one message, not a stack trace', () => {
    const r = parity(['--preset', 'nosuchpreset']);
    expect(r.code).to.not.equal(0);
    expect(r.err).to.match(/parity: unknown preset "nosuchpreset"/);
    expect(r.err).to.not.match(/^\s+at .+:\d+:\d+/m);
    const r2 = parity(['--preset', 'fashion-mnist', '--seeds', '0']);
    expect(r2.err).to.match(/--seeds must be an integer >= 1/);
    const r3 = parity(['--preset', 'fashion-mnist', '--seeds', '10-19']);
    expect(r3.err).to.match(/--seeds 10-19: a range of seeds is for the twin only/);
  });

  it('--seeds A-B --twin-only trains seeds A..B, each with its own data order (more seeds for a rung run before)', function () {
    if (!hasTorch() || !existsSync('/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz')) this.skip();
    const run = (seeds: string) => {
      const out = join(tmp(), 'parity');
      const args = ['--preset', 'fashion-mnist', '--rungs', '1', '--seeds', seeds, '--epochs', '1', '--limit-train', '320'];
      const r = parity([...args, '--twin-only', '--out', out]);
      expect(r.code, r.err + r.out).to.equal(0);
      return JSON.parse(readFileSync(join(out, 'parity.json'), 'utf8')).torch as Array<{
        seed: number;
        epochs: Array<{ train_loss: number }>;
      }>;
    };
    const [first, later] = [run('2'), run('1-1')];
    expect(later.map((r) => r.seed)).to.deep.equal([1]);
    // seed 1 of "--seeds 2" and of "--seeds 1-1" is the same run
    expect(later[0]!.epochs[0]!.train_loss).to.equal(first.find((r) => r.seed === 1)!.epochs[0]!.train_loss);
  });
});
