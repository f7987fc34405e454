// A 224-px photo folder trains one step on each zoo CNN (at batch 4, planned against the wasm heap as any run).
import { expect } from 'chai';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { MemoryLogger } from '@tricks/core';
import { testBackend, tiny, tmp, createTestTrainer } from './helpers.js';

const MODELS = [
  'resnet18',
  'resnet18-d',
  'resnet34',
  'resnet50',
  'resnext50-32x4d',
  'mobilenetv3-small',
  'mobilenetv3-large',
  'efficientnet-b0',
];

/** Two classes of 256x256 JPEGs (a red and a blue one, with noise), 4 train and 2 val images each. */
async function photoFolder(): Promise<string> {
  const dir = tmp('tricks-photos-');
  let seed = 1;
  const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 60;
  for (const [split, n] of [
    ['train', 4],
    ['val', 2],
  ] as const)
    for (const [k, cls] of ['red', 'blue'].entries()) {
      mkdirSync(join(dir, split, cls), { recursive: true });
      for (let i = 0; i < n; i++) {
        const px = Buffer.alloc(256 * 256 * 3);
        for (let j = 0; j < px.length; j++) px[j] = (j % 3 === 2 * k ? 170 : 40) + Math.floor(rand());
        await sharp(px, { raw: { width: 256, height: 256, channels: 3 } })
          .jpeg()
          .toFile(join(dir, split, cls, `${i}.jpg`));
      }
    }
  return dir;
}

describe('224-px photo folder', function () {
  this.timeout(600000);
  let data: string;
  before(async () => {
    await testBackend();
    data = await photoFolder();
  });

  for (const model of MODELS)
    it(`trains one step of ${model} at 224 px`, async () => {
      const logger = new MemoryLogger();
      const cfg = tiny({ data: `folder:${data}`, model, batchSize: 4, evalBatchSize: 4, limit: { steps: 1 }, optimizer: { lr: 0.01 } });
      const trainer = await createTestTrainer(cfg, { logger });
      const r = await trainer.run();
      expect(trainer.ctx.inputShape).to.deep.equal([224, 224, 3]);
      expect(r.epochs).to.have.length(1);
      expect(Number.isFinite(r.epochs[0]!.train_loss), logger.lines.join('\n')).to.equal(true);
      expect(r.epochs[0]!.val_top1).to.be.within(0, 1);
      trainer.dispose();
    });
});
