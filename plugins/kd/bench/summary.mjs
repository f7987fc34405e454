// Prints the KD table for docs/results.md from the run.json files that run.sh wrote.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const out = process.argv[2] ?? 'runs/kd-fashion';
const read = (d) => JSON.parse(readFileSync(join(out, d, 'run.json'), 'utf8'));
const last = (r) => r.result.epochs.at(-1);
const stats = (xs) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
  return `${(100 * m).toFixed(2)} ± ${(100 * sd).toFixed(2)}`;
};
const t = read('teacher');
console.log(
  `teacher ${t.result.epochs.length} epochs: top-1 ${(100 * last(t).val_top1).toFixed(2)}%, ${t.result.epochs.reduce((s, e) => s + e.seconds, 0).toFixed(0)} s`,
);
for (const kind of ['student', 'student-kd']) {
  const runs = [1, 2, 3]
    .map((s) => `${kind}-s${s}`)
    .filter((d) => existsSync(join(out, d, 'run.json')))
    .map(read);
  const top1 = runs.map((r) => last(r).val_top1);
  const secs = runs.map((r) => r.result.epochs.reduce((s, e) => s + e.seconds, 0));
  console.log(
    `${kind}: seeds ${runs.length}, top-1 ${stats(top1)} % (each: ${top1.map((v) => (100 * v).toFixed(2)).join(', ')}), seconds per run ${secs.map((s) => s.toFixed(0)).join(', ')}`,
  );
}
