import { expect } from 'chai';
import { MemoryLogger } from '@tricks/core';
import { etas, formatEta, Progress } from '../src/progress.js';

describe('progress output: the ETA of the epoch and of the run', () => {
  it('formats seconds as m:ss or h:mm:ss, and "-" before there is an estimate', () => {
    expect(formatEta(0)).to.equal('0:00');
    expect(formatEta(65.4)).to.equal('1:05');
    expect(formatEta(3725)).to.equal('1:02:05');
    expect(formatEta(NaN)).to.equal('-');
    expect(formatEta(-1)).to.equal('-');
  });

  it('extrapolates from this epoch: its remaining steps, then the later epochs at the same pace', () => {
    // 10 of 40 steps in 5 s: 0.5 s a step; 30 steps left (15 s), then 2 more epochs of 40 steps (40 s)
    const e = etas(10, 40, 5, 2);
    expect(e.epoch).to.equal(15);
    expect(e.run).to.equal(55);
    expect(Number.isNaN(etas(0, 40, 0, 2).epoch)).to.equal(true);
  });

  it('prints the ETA on the plain line a non-TTY run writes', async () => {
    const logger = new MemoryLogger();
    const p = new Progress(logger, false);
    p.start('epoch 1/3', 40, 2);
    (p as unknown as { lastLine: number }).lastLine = -Infinity; // as if 10 s had passed since the last line
    p.update(10, 0.5, 0.1, 100);
    p.stop();
    const line = logger.lines.join('\n');
    expect(line).to.match(/epoch 1\/3 step 10\/40 loss 0\.5000 lr 0\.100 100 img\/s eta \d+:\d\d \(run \d+:\d\d\)/);
  });
});
