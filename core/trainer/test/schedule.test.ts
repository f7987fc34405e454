import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { ScheduleRegistry } from '../src/optim/schedule.js';
import { TricksError } from '../src/hooks/errors.js';

interface SchedCase {
  name: string;
  options: Record<string, unknown>;
  baseLr: number;
  stepsPerEpoch: number;
  totalSteps: number;
  lrs: number[];
}

const cases = JSON.parse(readFileSync(new URL('../../test/fixtures/optim/schedules.json', import.meta.url), 'utf8')) as SchedCase[];

describe('lr schedules against torch.optim.lr_scheduler (fixtures/optim/schedules.json)', () => {
  const registry = new ScheduleRegistry();
  for (const c of cases) {
    it(`${c.name} ${JSON.stringify(c.options)}, base ${c.baseLr}, ${c.totalSteps} steps: every step matches`, () => {
      const f = registry.create({ name: c.name, ...c.options });
      for (let step = 0; step < c.totalSteps; step++) {
        const lr = f(c.baseLr, { step, stepsPerEpoch: c.stepsPerEpoch, totalSteps: c.totalSteps });
        const ref = c.lrs[step]!;
        // 1e-5 relative; the absolute 1e-12*base covers PyTorch's recursive cosine near eta_min = 0
        if (!(Math.abs(lr - ref) <= 1e-5 * Math.abs(ref) + 1e-12 * c.baseLr)) throw new Error(`step ${step}: ${lr} != ${ref}`);
      }
    });
  }

  it('fills defaults: onecycle pctStart 0.3, div 25, final div 1e4 (peak at step 0.3*total - 1)', () => {
    const f = registry.create({ name: 'onecycle' });
    const p = (step: number) => f(1, { step, stepsPerEpoch: 10, totalSteps: 100 });
    expect(p(0)).to.be.closeTo(1 / 25, 1e-12);
    expect(p(29)).to.be.closeTo(1, 1e-12);
    expect(p(99)).to.be.closeTo(1 / 25 / 1e4, 1e-15);
    expect(p(150)).to.equal(p(99));
  });

  it('onecycle maxLr overrides the base lr', () => {
    const f = registry.create({ name: 'onecycle', maxLr: 0.5 });
    expect(f(123, { step: 29, stepsPerEpoch: 10, totalSteps: 100 })).to.be.closeTo(0.5, 1e-12);
  });

  it('rejects unknown and bad options with the option path', () => {
    expect(() => registry.create({ name: 'cosine', warmupEpoch: 2 })).to.throw(
      TricksError,
      /schedule\.warmupEpoch.*did you mean "warmupEpochs"/s,
    );
    expect(() => registry.create({ name: 'step' })).to.throw(TricksError, /schedule\.stepSize.*required/);
    expect(() => registry.create({ name: 'onecycle', pctStart: 1.5 })).to.throw(TricksError, /schedule\.pctStart/);
    expect(() => registry.create({ name: 'cosin' })).to.throw(TricksError, /did you mean "cosine"/);
  });
});
