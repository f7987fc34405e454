import { expect } from 'chai';
import { Rng } from '../src/util/rng.js';

describe('Rng', () => {
  it('is reproducible from its seed and from a saved state', () => {
    const a = new Rng(42);
    const first = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => new Rng(42)).map((r) => r.next())[0]).to.equal(first[0]);
    const state = a.getState();
    const next = Array.from({ length: 5 }, () => a.next());
    const b = new Rng(0);
    b.setState(state);
    expect(Array.from({ length: 5 }, () => b.next())).to.deep.equal(next);
    expect(new Rng(43).next()).to.not.equal(first[0]);
  });

  it('draws Beta(a, b) with the right mean and a permutation of every index', () => {
    const r = new Rng(1);
    let s = 0;
    for (let i = 0; i < 20000; i++) s += r.beta(2, 6);
    expect(s / 20000).to.be.closeTo(0.25, 0.01);
    const p = Array.from(r.permutation(100)).sort((x, y) => x - y);
    expect(p).to.deep.equal(Array.from({ length: 100 }, (_, i) => i));
  });
});
