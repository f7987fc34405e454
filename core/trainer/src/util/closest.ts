import { closest as nearest, distance } from 'fastest-levenshtein';

/** " (did you mean "x"?)" when a candidate is near enough, else "". */
export function closest(name: string, candidates: string[]): string {
  if (!candidates.length) return '';
  const best = nearest(name, candidates);
  return distance(name, best) <= Math.max(2, Math.floor(best.length / 3)) ? ` (did you mean "${best}"?)` : '';
}
