// The plateau logic against torch.optim.lr_scheduler.ReduceLROnPlateau (test/fixtures/make_fixtures.py -> cases.json).
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { Plateau, monitored, type ReduceOnPlateauOptions } from '../src/index.js';
import { TricksError, type EpochMetrics } from '@tricks/core';

interface Case {
  name: string;
  options: Omit<ReduceOnPlateauOptions, 'monitor'>;
  lr0: number;
  metrics: number[];
  lrs: number[];
  best: (number | null)[];
  numBadEpochs: number[];
  cooldownCounter: number[];
}
const fixture = JSON.parse(readFileSync(new URL('../../test/fixtures/cases.json', import.meta.url), 'utf8')) as {
  torch: string;
  cases: Case[];
};

describe(`reduce-on-plateau against PyTorch ${fixture.torch} ReduceLROnPlateau (test/fixtures/cases.json)`, () => {
  it('covers min/max, rel/abs, cooldown, minLr and eps, and some cases do reduce', () => {
    const o = fixture.cases.map((c) => c.options);
    expect(o.some((x) => x.mode === 'max' && x.thresholdMode === 'abs')).to.equal(true);
    expect(o.some((x) => x.mode === 'min' && x.thresholdMode === 'abs')).to.equal(true);
    expect(o.some((x) => x.cooldown > 0)).to.equal(true);
    expect(o.some((x) => x.minLr > 0)).to.equal(true);
    expect(o.some((x) => x.eps !== 1e-8)).to.equal(true);
    expect(fixture.cases.filter((c) => c.lrs.some((lr) => lr !== c.lr0)).length).to.be.greaterThan(10);
  });

  for (const c of fixture.cases) {
    it(`${c.name}: the same lr, best, bad epochs and cooldown after every epoch`, () => {
      const p = new Plateau(c.options);
      let lr = c.lr0;
      c.metrics.forEach((m, i) => {
        lr = p.step(m, lr);
        expect(lr, `lr after epoch ${i + 1}`).to.equal(c.lrs[i]);
        expect(p.save(), `state after epoch ${i + 1}`).to.deep.equal({
          best: c.best[i],
          numBadEpochs: c.numBadEpochs[i],
          cooldownCounter: c.cooldownCounter[i],
        });
      });
    });
  }

  it('a plateau saved mid-way (JSON round trip) and loaded into a fresh one continues identically', () => {
    for (const c of fixture.cases) {
      for (const cut of [0, 1, Math.floor(c.metrics.length / 2)]) {
        const a = new Plateau(c.options);
        let lr = c.lr0;
        for (const m of c.metrics.slice(0, cut)) lr = a.step(m, lr);
        const b = new Plateau(c.options);
        b.load(JSON.parse(JSON.stringify(a.save())));
        const rest = c.metrics.slice(cut).map((m) => (lr = b.step(m, lr)));
        expect(rest, `${c.name}, cut ${cut}`).to.deep.equal(c.lrs.slice(cut));
      }
    }
  });

  it('a missing monitored key is a TricksError naming the option and the available keys', () => {
    const row = { epoch: 1, train_loss: 1, val_loss: 2, val_top1: 0.5, val_top5: 0.9, lr: 0.1 } as EpochMetrics;
    expect(monitored(row, 'val_top1')).to.equal(0.5);
    expect(() => monitored(row, 'val_acc'))
      .to.throw(TricksError, /option plugins\.reduce-on-plateau\.monitor is "val_acc"/)
      .with.property('message')
      .that.matches(/available: epoch, train_loss, val_loss, val_top1, val_top5, lr/);
  });
});
