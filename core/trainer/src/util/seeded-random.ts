import type { Rng } from './rng.js';

/**
 * Runs fn with Math.random drawn from `rng`. tfjs seeds its own random ops (weight initializers,
 * dropout) from Math.random when no seed is given, so this is what makes a run reproducible from
 * its seed, and a resumed run continue the same stream. fn must be synchronous.
 */
export function withSeededMathRandom<T>(rng: Rng, fn: () => T): T {
  const original = Math.random;
  Math.random = () => rng.next();
  try {
    return fn();
  } finally {
    Math.random = original;
  }
}
