// `tricks model list` and `tricks model summary`: the command's output for a real build, plugins applied.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { Command } from 'commander';
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { registerModelCommand, buildForSummary } from '../src/model.js';
import { modelCost } from '@tricks/models';

const ref = JSON.parse(readFileSync(new URL('../../../models/test/fixtures/models/reference.json', import.meta.url), 'utf8'));

async function run(args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  registerModelCommand(program);
  let out = '';
  const write = process.stdout.write;
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'tricks', ...args]);
  } finally {
    process.stdout.write = write;
  }
  return out;
}

describe('tricks model', function () {
  this.timeout(60000);
  let previousBackend: string | undefined;
  before(async () => {
    previousBackend = tf.getBackend();
    await tf.setBackend('cpu');
  });
  after(async () => {
    if (previousBackend) await tf.setBackend(previousBackend); // later files' suites keep the backend they had
  });

  it('list names every zoo model with a description', async () => {
    const out = await run(['model', 'list']);
    for (const n of [
      'resnet18',
      'resnet50-d',
      'resnet50-cifar',
      'resnext50-32x4d',
      'mobilenetv3-large',
      'efficientnet-b0',
      'swin-t',
      'swin-cifar',
      'small-cnn',
    ]) {
      expect(out).to.match(new RegExp(`^${n} +\\S`, 'm'));
    }
  });

  it('summary prints the layers, the parameter count and the MACs', async () => {
    const out = await run(['model', 'summary', 'mobilenetv3-small']);
    expect(out).to.include('b1_dw_conv');
    expect(out).to.include(`trainable parameters: ${ref.params['mobilenetv3-small'].toLocaleString('en-US')}`);
    expect(out).to.match(/0\.057 GMACs/);
  });

  it('summary --json --input --classes --options', async () => {
    const j = JSON.parse(
      await run(['model', 'summary', 'resnet18-cifar', '--input', '32', '--classes', '10', '--options', '{"variant":"d"}', '--json']),
    );
    // ResNet-18 with the CIFAR stem, 10 classes: 11,173,962; the deep stem (3->32->32->64 3x3 convs + BN, 28,768)
    // replaces the 3x3 3->64 conv + BN (1,856); the avg-pool of ResNet-D adds nothing
    expect(j.params).to.equal(11173962 - 1856 + 28768);
    expect(j.layers.some((l: { name: string }) => l.name === 's2b1_down_pool')).to.equal(true);
  });

  it('summary --plugin applies the block taps of an installed plugin (se-block): SE-ResNet-50', async function () {
    let m;
    try {
      m = await buildForSummary('resnet50', { input: 224, channels: 3, classes: 1000, plugins: ['se-block'] });
    } catch (e) {
      if (/unknown plugin/.test((e as Error).message)) this.skip();
      throw e;
    }
    expect(modelCost(m).params).to.equal(ref.params['se-resnet50']);
    m.dispose();
  });

  it('a bad flag or name is a user error', async () => {
    await run(['model', 'summary', 'resnet51']).then(
      () => expect.fail('accepted resnet51'),
      (e: Error) => expect(e.message).to.match(/unknown model "resnet51" \(did you mean/),
    );
    await run(['model', 'summary', 'resnet18', '--input', 'x']).then(
      () => expect.fail('accepted --input x'),
      (e: Error) => expect(e.message).to.match(/option --input: "x" is not an integer >= 1/),
    );
  });
});
