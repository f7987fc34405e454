import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertOptionError, cleanup, runSteps, useTestBackend } from '@tricks/helper-plugin-test-runner';
import { CsvMetricsSink } from '../src/index.js';

describe('csv-logger', function () {
  this.timeout(300000);
  before(() => useTestBackend());

  it('writes a header and one row per epoch, the same numbers as metrics.jsonl', async () => {
    const run = await runSteps({ plugins: [['csv-logger', {}]], steps: 2, config: { epochs: 2 } });
    try {
      const lines = readFileSync(join(run.out, 'metrics.csv'), 'utf8').trim().split('\n');
      expect(lines[0].split(',').slice(0, 8)).to.deep.equal([
        'epoch',
        'train_loss',
        'val_loss',
        'val_top1',
        'val_top5',
        'lr',
        'images_per_sec',
        'seconds',
      ]);
      expect(lines).to.have.length(3);
      const jsonl = readFileSync(join(run.out, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const header = lines[0].split(',');
      lines.slice(1).forEach((line, i) => {
        const row = Object.fromEntries(line.split(',').map((v, j) => [header[j], v]));
        expect(Number(row.epoch)).to.equal(i + 1);
        expect(Number(row.val_top1)).to.equal(jsonl[i].val_top1);
        expect(Number(row.train_loss)).to.equal(jsonl[i].train_loss);
      });
    } finally {
      cleanup(run);
    }
  });

  it('keeps the header of an existing file when it appends (a resumed run), starts afresh otherwise, and quotes cells', async () => {
    const dir = join(process.env.TMPDIR ?? '/tmp', `csv-${process.pid}-${Date.now()}`);
    const m = (epoch: number, extra = {}) => ({
      epoch,
      train_loss: 1,
      val_loss: 2,
      val_top1: 0.5,
      val_top5: 0.9,
      lr: 0.1,
      images_per_sec: 10,
      seconds: 1,
      ...extra,
    });
    const a = new CsvMetricsSink({ file: 'm.csv', separator: ';', append: false });
    await a.open(dir, false);
    await a.write(m(1, { ema_val_top1: 0.6 }));
    const b = new CsvMetricsSink({ file: 'm.csv', separator: ';', append: false });
    await b.open(dir, true);
    await b.write(m(2, { ema_val_top1: 0.7 }));
    let lines = readFileSync(join(dir, 'm.csv'), 'utf8').trim().split('\n');
    expect(lines).to.have.length(3);
    expect(lines[0].split(';').at(-1)).to.equal('ema_val_top1');
    expect(lines[2].split(';').at(-1)).to.equal('0.7');
    // a run killed after its epoch-2 row, before that epoch's checkpoint: the resumed run re-runs epoch 2
    const again = new CsvMetricsSink({ file: 'm.csv', separator: ';', append: false });
    await again.open(dir, true);
    await again.write(m(2, { ema_val_top1: 0.8 }));
    await again.write(m(3, { ema_val_top1: 0.9 }));
    lines = readFileSync(join(dir, 'm.csv'), 'utf8').trim().split('\n');
    expect(lines.slice(1).map((l) => [l.split(';')[0], l.split(';').at(-1)])).to.deep.equal([
      ['1', '0.6'],
      ['2', '0.8'],
      ['3', '0.9'],
    ]);
    const c = new CsvMetricsSink({ file: 'm.csv', separator: ';', append: false });
    await c.open(dir, false);
    await c.write(m(1));
    lines = readFileSync(join(dir, 'm.csv'), 'utf8').trim().split('\n');
    expect(lines).to.have.length(2);
  });

  it('rejects bad options with their path', async () => {
    await assertOptionError('csv-logger', { separator: '' }, /separator/);
    await assertOptionError('csv-logger', { fiel: 'x.csv' }, /fiel.*did you mean.*file/s);
    await assertOptionError('csv-logger', { file: '../x.csv' }, /leaves the run's folder/);
  });
});
