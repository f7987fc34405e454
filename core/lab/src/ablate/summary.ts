import { join } from 'node:path';
import { writeFileAtomic } from '@tricks/core';
import { curvesSpec, ladderSpec, renderSvg, svgToPng } from '../report/charts.js';
import type { RunRecord } from './run.js';
import { ablationHtml } from './html.js';
import { duration, pct, signed, verdict, type AblationSummary, type StepSummary } from './format.js';

export { duration, verdict, type AblationSummary, type StepSummary };

export const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
/** Sample standard deviation (Bessel-corrected), 0 for fewer than two values. */
export function std(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/** Groups finished runs by rung, in ladder order, with mean ± std and the step-to-step difference. */
export function summarizeRuns(runs: RunRecord[]): AblationSummary {
  const ladder = runs.filter((r) => r.role !== 'teacher');
  const byStep = new Map<number, RunRecord[]>();
  for (const r of ladder) byStep.set(r.ladderStep, [...(byStep.get(r.ladderStep) ?? []), r]);
  const steps: StepSummary[] = [];
  for (const k of [...byStep.keys()].sort((a, b) => a - b)) {
    const rs = byStep.get(k)!.sort((a, b) => a.seed - b.seed);
    const top1 = rs.map((r) => r.top1);
    const s: StepSummary = {
      ladderStep: k,
      stepName: rs[0].stepName,
      trick: rs[0].trick,
      n: rs.length,
      seeds: rs.map((r) => r.seed),
      top1,
      mean: mean(top1),
      std: std(top1),
      seconds: mean(rs.map((r) => r.seconds)),
      imagesPerSec: mean(rs.map((r) => mean(r.epochs.map((e) => e.images_per_sec)))),
    };
    const prev = steps.at(-1);
    if (prev) {
      s.delta = s.mean - prev.mean;
      s.deltaSe = s.n > 1 && prev.n > 1 ? Math.sqrt(s.std ** 2 / s.n + prev.std ** 2 / prev.n) : 0;
    }
    steps.push(s);
  }
  const t = runs.find((r) => r.role === 'teacher');
  return {
    steps,
    ...(t ? { teacher: { id: t.id, trick: t.trick, top1: t.top1, seconds: t.seconds } } : {}),
    runs: runs.map(({ epochs: _e, ...r }) => r),
    backend: runs.find((r) => r.backend)?.backend,
  };
}

/** The ablation table as Markdown. */
export function ablationMarkdown(sum: AblationSummary, title = 'Ablation'): string {
  const lines = [
    `# ${title}`,
    '',
    'Validation top-1 after the last epoch, mean ± sample standard deviation over seeds. Δ: against the previous step, ± its standard error.',
    '',
    '| # | step | trick added | top-1 (%) | seeds | Δ (points) | | train time / run |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const s of sum.steps) {
    const delta = s.delta === undefined ? '' : `${signed(s.delta)}${s.deltaSe ? ` ± ${pct(s.deltaSe)}` : ''}`;
    lines.push(
      `| ${s.ladderStep + 1} | ${s.stepName} | ${s.trick} | ${pct(s.mean)} ± ${pct(s.std)} | ${s.n} | ${delta} | ${verdict(s)} | ${duration(s.seconds)} |`,
    );
  }
  if (sum.steps.length > 1) {
    const first = sum.steps[0],
      last = sum.steps.at(-1)!;
    lines.push('', `Whole ladder: ${pct(first.mean)} → ${pct(last.mean)} (${signed(last.mean - first.mean)} points).`);
  }
  if (sum.teacher)
    lines.push(
      '',
      `Teacher for distillation: ${sum.teacher.trick}, top-1 ${pct(sum.teacher.top1)} % (one seed, ${duration(sum.teacher.seconds)}).`,
    );
  lines.push(
    '',
    '<details><summary>Every run</summary>',
    '',
    '| run | seed | top-1 (%) | time | resumed from epoch |',
    '|---|---|---|---|---|',
  );
  for (const r of sum.runs) lines.push(`| ${r.id} | ${r.seed} | ${pct(r.top1)} | ${duration(r.seconds)} | ${r.resumedFrom ?? ''} |`);
  lines.push('', '</details>', '');
  if (sum.backend) lines.push(`Backend: ${sum.backend}.`, '');
  return lines.join('\n');
}

/** Writes ablation.json, ablation.md, ladder.svg/.png, curves.svg/.png and ablation.html (all of them on one page) into `out`. */
export async function summarize(
  runs: RunRecord[],
  out: string,
  opts: { title?: string; reference?: { step: string; top1: number }[] } = {},
): Promise<AblationSummary> {
  const sum = summarizeRuns(runs);
  await writeFileAtomic(
    join(out, 'ablation.json'),
    JSON.stringify({ ...sum, curves: runs.map((r) => ({ id: r.id, epochs: r.epochs })) }, null, 1),
  );
  await writeFileAtomic(join(out, 'ablation.md'), ablationMarkdown(sum, opts.title));
  if (!sum.steps.length) return sum;
  const order = sum.steps.map((s) => `${s.ladderStep + 1}. ${s.stepName}`);
  const label = (r: RunRecord) => `${r.ladderStep + 1}. ${r.stepName}`;
  const ladderRuns = runs.filter((r) => r.role !== 'teacher');
  const ladder = ladderSpec(
    opts.title ?? 'Ablation ladder: val top-1 per step (dots: seeds; bars: ± 1 std)',
    ladderRuns.map((r) => ({ step: label(r), seed: r.seed, top1: r.top1 })),
    order,
    opts.reference,
  );
  const metrics = ['val_top1', 'val_loss', 'train_loss'];
  const curves = curvesSpec(
    ladderRuns.flatMap((r) =>
      r.epochs.flatMap((e) => metrics.map((m) => ({ epoch: e.epoch, step: label(r), metric: m, value: e[m] as number }))),
    ),
    order,
    metrics,
  );
  const svgs = { ladder: '', curves: '' };
  for (const [name, spec] of [
    ['ladder', ladder],
    ['curves', curves],
  ] as const) {
    const svg = (svgs[name] = await renderSvg(spec));
    await writeFileAtomic(join(out, `${name}.svg`), svg);
    await writeFileAtomic(join(out, `${name}.png`), await svgToPng(svg));
  }
  await writeFileAtomic(join(out, 'ablation.html'), ablationHtml(sum, svgs, opts.title));
  return sum;
}
