import { expect } from 'chai';
import { createHooks, MemoryLogger, tapOnly, TricksError, type EpochMetrics, type TrainContext } from '@tricks/core';
import { divergenceCheck } from '../src/divergence.js';

/**
 * Drives the tricks:divergence built-in with step losses, as the trainer would: stepEnd gets the epoch's running
 * mean and count, the epoch's mean goes into ctx.metrics at its end. Returns the warnings.
 */
function drive(epochs: number[][], o: { divergence?: 'warn' | 'stop' | 'off'; lr?: number; batchSize?: number } = {}) {
  const hooks = createHooks();
  const bs = o.batchSize ?? 32;
  divergenceCheck().apply({ hooks: tapOnly(hooks), config: {} as never, registerState() {} }, {});
  const logger = new MemoryLogger();
  const ctx = {
    config: { divergence: o.divergence, batchSize: bs, optimizer: { name: 'sgd', lr: o.lr ?? 0.1 }, schedule: { name: 'constant' } },
    metrics: [] as EpochMetrics[],
    epoch: 0,
    stepInEpoch: 0,
    lr: o.lr ?? 0.1,
    baseLr: o.lr ?? 0.1,
    logger,
  } as unknown as TrainContext;
  epochs.forEach((losses, e) => {
    ctx.epoch = e;
    (ctx as { stepsPerEpoch: number }).stepsPerEpoch = losses.length;
    ctx.stepInEpoch = 0;
    hooks.epochStart.call(ctx);
    let sum = 0,
      seen = 0;
    for (const l of losses) {
      if (!Number.isNaN(l)) {
        sum += l * bs;
        seen += bs;
      } // NaN here: a cancelled batch (nothing counted)
      ctx.stepInEpoch++;
      hooks.stepEnd.call(ctx, { loss: seen ? sum / seen : NaN, seen, imagesPerSec: 100 });
    }
    ctx.metrics.push({ epoch: e + 1, train_loss: sum / seen } as EpochMetrics);
  });
  return logger.lines.filter((l) => l.startsWith('warning:'));
}

/** n losses from a to b (geometric), times a seeded +-noise. */
function curve(n: number, a: number, b: number, noise = 0.1, seed = 1): number[] {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  return Array.from({ length: n }, (_, i) => a * (b / a) ** (i / Math.max(1, n - 1)) * (1 + noise * rnd()));
}

describe('divergence check (tricks:divergence)', () => {
  it('stays quiet on a falling loss, a flat noisy one and a run that ends near zero', () => {
    expect(drive([curve(50, 2.3, 0.8), curve(50, 0.8, 0.3), curve(50, 0.3, 0.05, 0.3)])).to.deep.equal([]);
    expect(drive([curve(40, 2.3, 2.3, 0.2), curve(40, 2.3, 2.2, 0.2, 7)]), 'flat, +-20 %').to.deep.equal([]);
    // a loss that rises over the first steps (a warm-up transient) is not a divergence
    expect(drive([[...curve(10, 2.3, 3.5, 0.05), ...curve(40, 3.5, 1)]])).to.deep.equal([]);
    // nor is a spike the run recovers from: the quick start's at its OneCycle peak (0.2 -> 6.5 -> 0.2 over 25 steps)
    const spike = [...curve(45, 2.7, 0.25), ...curve(8, 1.2, 6.5), ...curve(15, 6, 0.3), ...curve(73, 0.3, 0.1)];
    expect(drive([spike, curve(140, 0.15, 0.05, 0.3)])).to.deep.equal([]);
  });

  it("warns once when the first epoch's loss climbs over twice the first step's, naming --lr and a 10x lower one", () => {
    const w = drive([[2.4, ...curve(60, 20, 30)]], { lr: 0.1 });
    expect(w).to.have.length(1);
    expect(w[0])
      .to.match(/diverging: epoch 1's mean so far \(10 steps\) is \d+\.\d{4}, over 2x the first step's 2\.4000 \(the untrained model\)/)
      .and.include('The likely cause is the learning rate (--lr 0.1; sgd, constant schedule, now 0.100)')
      .and.include('Try --lr 0.01 (10x lower), or let tricks lr-find suggest one (same flags)');
  });

  it("warns when a later epoch's loss climbs over the first epoch's mean, or grows tenfold over the lowest epoch's", () => {
    const above = drive([curve(40, 2.3, 0.5), curve(40, 0.5, 0.3), curve(40, 2.5, 3)]);
    expect(above).to.have.length(1);
    expect(above[0]).to.match(/epoch 3's mean so far \(10 steps\) is 2\.\d{4}, over 1\.5x the first epoch's 1\.\d{4}\./);
    const tenfold = drive([curve(40, 2.3, 0.1), curve(40, 0.05, 0.02), curve(40, 0.4, 0.6)]);
    expect(tenfold).to.have.length(1);
    expect(tenfold[0]).to.match(/epoch 3's mean so far \(10 steps\) is 0\.\d{4}, \d+\.\dx the lowest epoch's, 0\.0\d{3}\./);
  });

  it('skips cancelled batches, is off with divergence "off", and stops the run with "stop"', () => {
    expect(drive([[2.3, NaN, NaN, ...curve(40, 2.3, 0.5)]])).to.deep.equal([]);
    expect(drive([[2.4, ...curve(60, 20, 30)]], { divergence: 'off' })).to.deep.equal([]);
    expect(() => drive([[2.4, ...curve(60, 20, 30)]], { divergence: 'stop', lr: 0.4 }))
      .to.throw(TricksError, /diverging.*stopped \(--on-divergence stop\)/s)
      .with.property('message')
      .that.includes('try --lr 0.04 (10x lower), or let tricks lr-find suggest one');
  });
});
