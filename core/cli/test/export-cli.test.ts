// tricks export: formats from a saved run, verified on --data; bad input named.
import { expect } from 'chai';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { exportCommand } from '../src/export.js';
import { buildProgram } from '../src/main.js';
import { MemoryLogger } from '@tricks/core';
import { testBackend, tiny, tmp, createTestTrainer } from './helpers.js';

describe('tricks export', function () {
  this.timeout(120000);
  let out: string;
  before(async () => {
    await testBackend();
    const cfg = tiny();
    out = cfg.out!;
    await (await createTestTrainer(cfg, { logger: new MemoryLogger() })).run();
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  it('is a registered command', async () => {
    const program = await buildProgram();
    expect(program.commands.map((c) => c.name())).to.include('export');
  });

  it('writes several formats, each reloaded and evaluated against the source model', async () => {
    const dest = tmp('tricks-export-cli-');
    try {
      const r = await exportCommand(
        {
          model: join(out, 'model'),
          format: 'tfjs-fp16,onnx,onnx-int8',
          out: dest,
          data: 'digits',
          batchSize: 128,
          backend: 'wasm',
          bits: 8,
        },
        new MemoryLogger() as never,
      );
      expect(r.artifacts.map((a) => a.format)).to.deep.equal(['tfjs-fp16', 'onnx', 'onnx-int8']);
      expect(existsSync(join(dest, 'onnx-int8', 'model.onnx'))).to.equal(true);
      expect(r.artifacts[1].agreement).to.equal(1);
      expect(r.artifacts[2].quantization).to.equal('ptq');
      expect(r.artifacts[2].bytes).to.be.below(r.artifacts[1].bytes / 2.5);
      for (const a of r.artifacts) expect(a.count).to.be.greaterThan(100);
      const one = await exportCommand(
        { model: join(out, 'model'), format: 'tfjs-uint8', out: join(dest, 'u8'), batchSize: 128, backend: 'wasm', bits: 8 },
        new MemoryLogger() as never,
      );
      expect(one.artifacts[0].note).to.match(/not verified/);
      expect(existsSync(join(dest, 'u8', 'model.json'))).to.equal(true);
    } finally {
      rmSync(dest, { recursive: true, force: true });
    }
  });

  it('names a wrong format, and onnx-int8 of a float model without data', async () => {
    const args = { model: join(out, 'model'), out: tmp('x-'), batchSize: 64, backend: 'wasm', bits: 8 };
    try {
      await exportCommand({ ...args, format: 'tfjs-int8' }, new MemoryLogger() as never);
      expect.fail('accepted');
    } catch (e) {
      expect((e as Error).message).to.match(/--format: unknown export format "tfjs-int8"/);
    }
    try {
      await exportCommand({ ...args, format: 'onnx-int8' }, new MemoryLogger() as never);
      expect.fail('accepted');
    } catch (e) {
      expect((e as Error).message).to.match(/calibration data/);
    }
  });
});
