import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { TricksError } from '@tricks/core';
import { dataOptionsFromFlags, parseDataOptions } from '../src/data-options.js';
import { tmp } from './helpers.js';

const bin = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'tricks.js');

function tricks(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** An error a user can act on: exit 1, "error: " and the message, no stack trace. */
function expectUserError(r: { code: number | null; err: string }, re: RegExp) {
  expect(r.code, r.err).to.equal(1);
  expect(r.err).to.match(re);
  expect(r.err).to.not.match(/internal error|^\s+at /m);
}

/** Two classes of 48x40 JPEGs (dark and bright), 6 each. */
async function photoFolder(): Promise<string> {
  const root = tmp('tricks-photos-');
  for (const [c, v] of [
    ['dark', 40],
    ['bright', 210],
  ] as const) {
    mkdirSync(join(root, c));
    for (let k = 0; k < 6; k++) {
      const raw = Buffer.alloc(48 * 40 * 3, v + k);
      await sharp(raw, { raw: { width: 48, height: 40, channels: 3 } })
        .jpeg()
        .toFile(join(root, c, `${k}.jpg`));
    }
  }
  return root;
}

describe('--data-option and --image-size (train, eval, ablate)', function () {
  this.timeout(120000);
  let folder: string;
  before(async () => {
    folder = await photoFolder();
  });

  it('parses key=value as JSON, a number or a string, and maps --image-size onto dataOptions.size', () => {
    expect(parseDataOptions(['size=[224,192]', 'cropPct=.875', 'resize=contain', 'cache=false', 'cacheDir=/tmp/x=y'])).to.deep.equal({
      size: [224, 192],
      cropPct: 0.875,
      resize: 'contain',
      cache: false,
      cacheDir: '/tmp/x=y',
    });
    expect(dataOptionsFromFlags({ dataOption: ['cropPct=1'], imageSize: 96 })).to.deep.equal({ cropPct: 1, size: 96 });
    expect(() => parseDataOptions(['size'])).to.throw(TricksError, /--data-option: "size" is not key=value/);
    expect(() => dataOptionsFromFlags({ dataOption: ['size=64'], imageSize: 96 })).to.throw(/both give the image size/);
  });

  it('names an unknown key, a key this data does not have and a bad value, in one message without a stack trace', () => {
    const common = ['--data', `folder:${folder}`, '--epochs', '1', '--steps', '1', '--batch-size', '4', '--no-checkpoint', '--out', tmp()];
    expectUserError(
      tricks(['train', ...common, '--data-option', 'sise=64']),
      /^error: --data-option sise: folder has no option "sise" \(did you mean "size"\?\)\n {2}the options of folder: valSplit, strict, size, cropPct/m,
    );
    expectUserError(
      tricks(['train', ...common, '--data-option', 'cropPct=2']),
      /^error: dataOptions\.cropPct must be a number in \(0, 1\], got 2\n {2}for example --data-option cropPct=0\.875/m,
    );
    expectUserError(
      tricks(['train', ...common, '--data-option', 'coarse=true']),
      /--data-option coarse: folder has no option "coarse"; it is an option of cifar100/,
    );
    expectUserError(
      tricks(['train', '--data', 'digits', '--image-size', '64', '--steps', '1', '--out', tmp()]),
      /^error: --image-size: the images of digits are not resized \(its options: valSplit, strict\)\n {2}--image-size applies to folder:DIR; drop it for digits/m,
    );
    expectUserError(
      tricks(['eval', '--model', tmp(), '--data', `folder:${folder}`, '--data-option', 'resize=squash']),
      /dataOptions\.resize must be cover, contain or fill, got "squash"/,
    );
    expectUserError(
      tricks(['ablate', '--preset', 'quickstart', '--data', `folder:${folder}`, '--out', tmp(), '--data-option', 'sise=3']),
      /^error: --data-option sise: folder has no option "sise"/m,
    );
  });

  it('--image-size reaches the folder loader: the log says why, the model takes NxNx3, eval needs the same size', () => {
    const out = tmp();
    const t = tricks([
      'train',
      '--data',
      `folder:${folder}`,
      '--image-size',
      '40',
      '--data-option',
      'cropPct=1',
      '--epochs',
      '1',
      '--steps',
      '2',
      '--batch-size',
      '4',
      '--no-checkpoint',
      '--out',
      out,
    ]);
    expect(t.code, t.err).to.equal(0);
    expect(t.err)
      .to.include('images 40x40, from --image-size or dataOptions.size; train: shorter side 40, centre crop; val: the same')
      .and.include('40x40x3, 2 classes');
    const model = JSON.parse(readFileSync(join(out, 'model', 'model.json'), 'utf8'));
    expect(model.modelTopology.config.layers[0].config.batch_input_shape).to.deep.equal([null, 40, 40, 3]);
    expect(JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')).config.dataOptions).to.deep.equal({ cropPct: 1, size: 40 });
    const e = tricks(['eval', '--model', join(out, 'model'), '--data', `folder:${folder}`, '--image-size', '40']);
    expect(e.code, e.err).to.equal(0);
    expect(e.err).to.include('shorter side 45, centre crop 40 (cropPct 0.875)'); // eval's own default: torchvision's
    expect(JSON.parse(e.out).count).to.be.greaterThan(0);
    expectUserError(
      tricks(['eval', '--model', join(out, 'model'), '--data', `folder:${folder}`]),
      /takes inputs of 40x40x3, but folder:.* has 40x48x3 images\n {2}evaluate at the size the model was trained at: --image-size 40/,
    );
  });
});
