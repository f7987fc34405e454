import { TricksError } from '@tricks/core';

const parser = (name: string, what: string, ok: (n: number) => boolean) => (v: string) => {
  const n = v.trim() === '' ? Number.NaN : Number(v);
  if (!ok(n)) throw new TricksError(`option ${name}: "${v}" is not ${what}`);
  return n;
};

/** Commander's parser of an integer flag in [min, max]; anything else is a TricksError naming the flag. */
export const int = (name: string, min = -Infinity, max = Infinity) =>
  parser(
    name,
    `an integer${max < Infinity ? ` in ${min}..${max}` : min > -Infinity ? ` >= ${min}` : ''}`,
    (n) => Number.isInteger(n) && n >= min && n <= max,
  );

/** Commander's parser of a number flag: finite, above `above` (exclusive) and below `below` (exclusive). */
export const num = (name: string, above = -Infinity, below = Infinity) =>
  parser(
    name,
    `a number${above > -Infinity ? ` > ${above}` : ''}${below < Infinity ? `${above > -Infinity ? ' and' : ''} < ${below}` : ''}`,
    (n) => Number.isFinite(n) && n > above && n < below,
  );

/** Commander's parser of a folder flag: an empty one ("") would write into the current folder. */
export const folder = (name: string) => (v: string) => {
  if (!v.trim()) throw new TricksError(`option ${name}: "${v}" is not a folder`, `give a folder, e.g. ${name} runs/first`);
  return v;
};
