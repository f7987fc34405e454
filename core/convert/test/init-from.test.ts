// initFrom (tricks train --init-from) on a torchvision ResNet-18 that PyTorch saves here with seeded random weights:
// from the .pth (converted in memory) and from a `tricks convert` folder, onto a 10-class, 1-channel run.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { definePlugin, MemoryLogger, TricksError, type PluginDefinition } from '@tricks/core';
import { testKit } from '@tricks/core/testing';
import { dataBuiltin } from '@tricks/data';
import { modelsBuiltin } from '@tricks/models';
import { wasmBuiltin, wasmProvider } from '@tricks/backend-wasm';
import { convertFile, initFromBuiltin } from '../src/index.js';

const { testBackend, tiny, createTestTrainer } = testKit({
  builtins: [initFromBuiltin, dataBuiltin, modelsBuiltin, wasmBuiltin] as PluginDefinition[],
  backends: { wasm: wasmProvider },
});
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** The run's weights right after the init-from tap (before any step), by original name. */
function afterInit() {
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  const plugin = definePlugin({
    name: 'test:after-init',
    description: 'weights after init-from',
    apply(api) {
      api.hooks.setup.tapPromise({ name: 'test:after-init', stage: -1e7 }, async (ctx) => {
        for (const w of ctx.model.weights)
          weights.set(w.originalName, { shape: w.shape as number[], data: w.read().dataSync() as Float32Array });
      });
    },
  });
  return { weights, plugin };
}

describe('initFrom', function () {
  this.timeout(300000);
  let dir: string;
  let ref: { conv1: Float32Array; bn: Float32Array; fcShape: number[] };

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'tricks-init-from-'));
    const py = spawnSync(
      PYTHON,
      [
        '-c',
        `import sys, torch, torchvision
torch.manual_seed(0)
m = torchvision.models.resnet18()
with torch.no_grad():
    m.layer4[1].bn2.running_var.uniform_(0.5, 2.0)
torch.save(m.state_dict(), sys.argv[1] + '/resnet18.pth')
# timm's adapt_input_conv for 1 channel: the RGB kernel summed over its input channels; OIHW -> HWIO
m.conv1.weight.detach().sum(dim=1, keepdim=True).permute(2, 3, 1, 0).contiguous().numpy().tofile(sys.argv[1] + '/conv1.bin')
m.layer4[1].bn2.running_var.numpy().tofile(sys.argv[1] + '/bn.bin')`,
        dir,
      ],
      { encoding: 'utf8' },
    );
    if (py.status !== 0) {
      console.log(`    (skipped: ${PYTHON} with torch and torchvision is not available: ${py.stderr.trim().split('\n').at(-1)})`);
      this.skip();
    }
    const f32 = (f: string) => {
      const b = readFileSync(join(dir, f));
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    };
    ref = { conv1: f32('conv1.bin'), bn: f32('bn.bin'), fcShape: [512, 10] };
    await testBackend();
  });

  const run = async (initFrom: string, model = 'resnet18') => {
    const snap = afterInit();
    const logger = new MemoryLogger();
    const cfg = tiny({ model: { name: model }, initFrom, batchSize: 16, limit: { train: 64, val: 32, steps: 1 } });
    const trainer = await createTestTrainer(cfg, { logger, builtins: [snap.plugin] });
    try {
      const r = await trainer.run();
      return { r, logger, weights: snap.weights, options: trainer.config.model.options };
    } finally {
      trainer.dispose();
    }
  };

  const expectPretrained = (w: Map<string, { shape: number[]; data: Float32Array }>) => {
    const conv1 = [...w.entries()].find(([n]) => /conv/.test(n) && w.get(n)!.shape.length === 4)![1];
    expect(conv1.shape).to.deep.equal([7, 7, 1, 64]);
    conv1.data.forEach((v, i) => expect(v).to.be.closeTo(ref.conv1[i]!, 1e-5));
    // the last block's second batch norm: its running variance is PyTorch's
    const bn = [...w.entries()].filter(([n]) => /moving_variance/.test(n)).at(-1)![1];
    expect(Array.from(bn.data)).to.deep.equal(Array.from(ref.bn));
    const dense = [...w.values()].find((v) => v.shape.length === 2)!;
    expect(dense.shape).to.deep.equal(ref.fcShape);
  };

  it("from a .pth converted in memory: the body is PyTorch's, the stem summed for 1 channel, the head new for 10 classes", async () => {
    const { r, logger, weights, options } = await run(join(dir, 'resnet18.pth'));
    expectPretrained(weights);
    const log = logger.lines.join('\n');
    expect(log).to.match(/init-from: .*resnet18\.pth: torchvision resnet18, \d+ tensors \(pytorch-zip\), converted in memory/);
    expect(log).to.include("summed over the channels (timm's adapt_input_conv)");
    expect(log).to.match(/the classifier is new \(1000 classes in the pretrained weights, 10 here\)/);
    expect(log).to.match(/warning: init-from: ImageNet weights expect ImageNet-normalized input/);
    expect(options).to.deep.include({ padding: 'torch' });
    expect(r.epochs).to.have.length(1);
  });

  it('from a tricks convert folder: the same weights', async () => {
    const out = join(dir, 'converted');
    await convertFile(join(dir, 'resnet18.pth'), out, { model: 'resnet18' });
    const { weights } = await run(out);
    expectPretrained(weights);
  });

  it('names a missing path, and a checkpoint of another architecture', async () => {
    const missing = await run(join(dir, 'nope.pth')).catch((e) => e);
    expect(missing).to.be.instanceOf(TricksError);
    expect(missing.message).to.match(/initFrom .*nope\.pth: no such file or folder/);
    const other = await run(join(dir, 'resnet18.pth'), 'resnet34').catch((e) => e);
    expect(other).to.be.instanceOf(TricksError);
    expect(other.message).to.match(/layer3\.\d|missing|misshapen|resnet18/);
  });
});
