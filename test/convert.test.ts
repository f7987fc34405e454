/**
 * `tricks convert` through the real CLI, on a checkpoint that core/convert's generator makes here with PyTorch:
 * the printed report (what it read, what it became, the input it expects), the written folder, `--strict false`,
 * and the bad inputs (one message, exit 1, no stack trace, nothing written). Skips when python3's torch is absent.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, run, tmp } from './cli-helpers.js';

const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const script = join(root, 'core', 'convert', 'test', 'fixtures', 'make_checkpoints.py');

describe('tricks convert (CLI)', function () {
  this.timeout(300000);
  let dir = '';
  before(function () {
    const probe = spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      console.log(`      skipped: ${PYTHON} with torch and torchvision is not available`);
      this.skip();
    }
    dir = tmp();
    const r = spawnSync(PYTHON, [script, dir, 'mobilenet_v3_small'], { encoding: 'utf8', timeout: 300000 });
    expect(r.status, r.stderr).to.equal(0);
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  const noTrace = (err: string) => expect(err).to.not.match(/\n\s+at .+:\d+:\d+/);

  it('converts, says what the model expects, and writes model.json with that metadata', () => {
    const out = join(dir, 'mnv3');
    const r = run(['convert', join(dir, 'mobilenet_v3_small.pth'), '--model', 'mobilenet_v3_small', '--out', out]);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(
      /as torchvision's mobilenet_v3_small into the zoo's mobilenetv3-small: 210 tensors, 2,542,856 parameters, 1000 classes/,
    );
    expect(r.out).to.match(/input: float32 NHWC \[N, 224, 224, 3\], RGB scaled to \[0, 1\] and ImageNet-normalized/);
    const meta = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')).userDefinedMetadata;
    expect(meta.input).to.include({ layout: 'NHWC', dtype: 'float32' });
    expect(meta.input.std).to.deep.equal([0.229, 0.224, 0.225]);
    expect(meta.tricks.model).to.equal('mobilenetv3-small');
    expect(meta.tricks.converted.format).to.equal('pytorch-zip');
  });

  it('tricks export puts the ImageNet normalization inside, tricks predict applies it (from the input metadata)', async () => {
    const out = join(dir, 'mnv3');
    const exp = join(dir, 'mnv3-export');
    const e = run(['export', '--model', out, '--format', 'tfjs', '--out', exp]);
    expect(e.code, e.err).to.equal(0);
    const inf = JSON.parse(readFileSync(join(exp, 'model.json'), 'utf8')).userDefinedMetadata.inference;
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    expect(inf.input).to.equal('pixels');
    inf.preprocessing.scale.forEach((s: number, i: number) => expect(s).to.be.closeTo(1 / (255 * std[i]), 1e-6));
    inf.preprocessing.offset.forEach((o: number, i: number) => expect(o).to.be.closeTo(-mean[i] / std[i], 1e-5));
    const sharp = (await import('sharp')).default;
    const img = join(dir, 'red.png');
    await sharp({ create: { width: 300, height: 260, channels: 3, background: { r: 200, g: 30, b: 90 } } })
      .png()
      .toFile(img);
    const p = run(['predict', '--model', out, img]);
    expect(p.code, p.err).to.equal(0);
    expect(p.err + p.out).to.match(
      /inputs: pixels \/ 255, then \(x - mean\) \/ std with mean \[0\.485,0\.456,0\.406\], std \[0\.229,0\.224,0\.225\]/,
    );
    expect(p.out).to.match(/red\.png\t\d+ /);
  });

  it('--strict false with another class count lists what it skipped; --json reports it too', () => {
    const out = join(dir, 'head');
    const r = run([
      'convert',
      join(dir, 'mobilenet_v3_small.safetensors'),
      '--model',
      'mobilenetv3-small',
      '--out',
      out,
      '--classes',
      '10',
      '--strict',
      'false',
      '--json',
    ]);
    expect(r.code, r.err).to.equal(0);
    const report = JSON.parse(r.out);
    expect(report.format).to.equal('safetensors');
    expect(report.skipped.map((s: { key: string }) => s.key)).to.deep.equal(['classifier.3.weight', 'classifier.3.bias']);
    const text = run([
      'convert',
      join(dir, 'mobilenet_v3_small.safetensors'),
      '--model',
      'mobilenetv3-small',
      '--out',
      out,
      '--classes',
      '10',
      '--strict',
      'false',
    ]);
    expect(text.out).to.match(/skipped \(2, --strict false\):\n {2}classifier\.3\.weight: \[1000, 1024\] in the file, \[10, 1024\] needed/);
  });

  it('bad input: one message, exit 1, no stack trace, nothing written', () => {
    const text = join(dir, 'readme.pth');
    writeFileSync(text, 'not weights');
    const cut = join(dir, 'cut.pth');
    writeFileSync(cut, readFileSync(join(dir, 'mobilenet_v3_small.pth')).subarray(0, 100000));
    const cases: [string[], RegExp][] = [
      [
        [join(dir, 'mobilenet_v3_small.pth'), '--model', 'resnet50'],
        /do not fit resnet50 \(zoo resnet50-b\)[\s\S]*looks like a mobilenet_v3_small checkpoint/,
      ],
      [[cut, '--model', 'mobilenet_v3_small'], /cut short or damaged/],
      [
        [join(dir, 'evil.pth'), '--model', 'resnet18'],
        /names the Python object (posix|os)\.system, which is not part of a state_dict: the file was refused and nothing in it ran/,
      ],
      [[text, '--model', 'resnet18'], /readme\.pth is not a checkpoint/],
      [
        [join(dir, 'mobilenet_v3_small.pth'), '--model', 'mobilenet_v3_small', '--strict', 'maybe'],
        /option --strict: "maybe" is not true or false/,
      ],
    ];
    for (const [args, re] of cases) {
      const out = join(dir, 'bad');
      const r = run(['convert', ...args, '--out', out]);
      expect(r.code, `${args.join(' ')}: ${r.out}`).to.equal(1);
      expect(r.err).to.match(re);
      noTrace(r.err);
      expect(existsSync(out), out).to.equal(false);
      expect(existsSync(join(dir, 'PWNED'))).to.equal(false);
    }
  });
});
