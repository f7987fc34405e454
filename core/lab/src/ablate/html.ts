import { esc } from '../report/interpretation.js';
import { REPORT_CSS } from '../report/report.js';
import { duration, pct, signed, verdict, type AblationSummary } from './format.js';

/**
 * ablation.html: the ladder with its error bars, the delta table, the per-rung curves and every run (with a link
 * to its report.html), in one self-contained page (inline SVG, no script), as report.html is for one run.
 */
export function ablationHtml(sum: AblationSummary, charts: { ladder: string; curves: string }, title = 'Ablation'): string {
  const first = sum.steps[0],
    last = sum.steps.at(-1);
  const rows = sum.steps
    .map((s) => {
      const delta = s.delta === undefined ? '' : `${signed(s.delta)}${s.deltaSe ? ` ± ${pct(s.deltaSe)}` : ''}`;
      return `<tr><td>${s.ladderStep + 1}</td><td>${esc(s.stepName)}</td><td><code>${esc(s.trick)}</code></td><td>${pct(s.mean)} ± ${pct(s.std)}</td><td>${s.n}</td><td>${delta}</td><td>${esc(verdict(s))}</td><td>${duration(s.seconds)}</td></tr>`;
    })
    .join('\n');
  const runs = sum.runs
    .map(
      (r) =>
        `<tr><td><a href="runs/${encodeURIComponent(r.id)}/report.html">${esc(r.id)}</a></td><td>${esc(r.stepName)}</td><td>${r.seed}</td><td>${pct(r.top1)}</td><td>${duration(r.seconds)}</td><td>${r.resumedFrom ?? ''}</td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title><style>${REPORT_CSS}</style></head>
<body>
<h1>${esc(title)}</h1>
<p class="sub">Validation top-1 after the last epoch (no epoch picked on the validation set), mean ± sample standard deviation over seeds.
Δ: against the previous rung, ± its standard error.${sum.backend ? ` Backend: ${esc(sum.backend)}.` : ''}</p>
${first && last && sum.steps.length > 1 ? `<p id="whole-ladder">Whole ladder: ${pct(first.mean)} → ${pct(last.mean)} (${signed(last.mean - first.mean)} points).</p>` : ''}
<h2>Ladder</h2>
<figure id="chart-ladder" class="chart">${charts.ladder}</figure>
<table id="deltas"><tr><th>#</th><th>rung</th><th>trick added</th><th>top-1 (%)</th><th>seeds</th><th>Δ (points)</th><th></th><th>time / run</th></tr>
${rows}
</table>
${sum.teacher ? `<p>Teacher for distillation: ${esc(sum.teacher.trick)}, top-1 ${pct(sum.teacher.top1)} % (one seed, ${duration(sum.teacher.seconds)}).</p>` : ''}
<h2>Curves per rung (mean over seeds)</h2>
<figure id="chart-curves" class="chart">${charts.curves}</figure>
<h2>Every run</h2>
<table id="runs"><tr><th>run (its report)</th><th>rung</th><th>seed</th><th>top-1 (%)</th><th>time</th><th>resumed from epoch</th></tr>
${runs}
</table>
</body></html>
`;
}
