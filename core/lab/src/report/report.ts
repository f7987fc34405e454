import { join } from 'node:path';
import { inject, injectable, optional } from 'inversify';
import { type EpochMetrics, type RunResult, writeFileAtomic, type ResolvedConfig, type EvalResult, type TrainContext } from '@tricks/core';
import { confusionSpec, lineSpec, perClassSpec, renderSvg, type SeriesPoint } from './charts.js';
import {
  esc,
  INTERPRET_CSS,
  INTERPRETER,
  interpretationHtml,
  interpretOptions,
  type Interpretation,
  type Interpreter,
} from './interpretation.js';

/** Writes a human-readable report of a finished run. A service (TOKENS.Reporter): rebind it to change or silence it. */
export interface Reporter {
  /** Returns the path written, or undefined. `lastEval` is the last epoch's evaluation (with the confusion matrix). */
  write(ctx: TrainContext, result: RunResult, lastEval?: EvalResult): Promise<string | undefined>;
}

/** Everything report.html shows; plain data, so a report can be rendered without a trainer. */
export interface ReportData {
  title: string;
  out: string;
  createdAt: string;
  config: ResolvedConfig;
  backend: string;
  model: { name: string; parameters: number };
  data: { train: number; val: number; shape: number[]; numClasses: number };
  classNames: string[];
  metrics: EpochMetrics[];
  eval?: Pick<EvalResult, 'confusion' | 'count' | 'top1' | 'top5' | 'loss'>;
  stopped?: string;
  artifacts: { format: string; dir: string; files: string[]; report?: Record<string, unknown> }[];
  /** Top losses, most confused, Grad-CAM (the Interpreter service). */
  interpretation?: Interpretation;
}

const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(2)} %`);
const secs = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(2)} h` : s >= 120 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`);

/** Per-class accuracy (recall) from a confusion matrix [true][predicted]. */
export function perClassAccuracy(confusion: number[][], classNames: string[]): { name: string; accuracy: number; count: number }[] {
  return confusion.map((row, i) => {
    const count = row.reduce((a, b) => a + b, 0);
    return { name: classNames[i] ?? String(i), accuracy: count ? row[i] / count : NaN, count };
  });
}

function table(rows: [string, string][]): string {
  return `<table class="kv">${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join('')}</table>`;
}

/** The charts of a report as SVG strings, by id. */
export async function reportCharts(d: ReportData): Promise<Record<string, string>> {
  const ms = d.metrics;
  const series = (pairs: [string, keyof EpochMetrics][]): SeriesPoint[] =>
    pairs.flatMap(([label, key]) => ms.map((m) => ({ epoch: m.epoch, value: m[key] as number, series: label })));
  const charts: Record<string, string> = {};
  if (ms.length) {
    charts.loss = await renderSvg(
      lineSpec(
        'Loss',
        'cross-entropy (+ plugin terms)',
        series([
          ['train loss', 'train_loss'],
          ['val loss', 'val_loss'],
        ]),
      ),
    );
    charts.accuracy = await renderSvg(
      lineSpec(
        'Validation accuracy',
        'accuracy',
        series([
          ['val top-1', 'val_top1'],
          ['val top-5', 'val_top5'],
        ]),
      ),
    );
    charts.lr = await renderSvg(lineSpec('Learning rate (last step of each epoch)', 'lr', series([['lr', 'lr']]), { zeroY: true }));
    charts.speed = await renderSvg(
      lineSpec('Training throughput', 'images / s', series([['images/s', 'images_per_sec']]), { zeroY: true }),
    );
  }
  if (d.eval) {
    charts.confusion = await renderSvg(confusionSpec(d.eval.confusion, d.classNames));
    charts.perClass = await renderSvg(perClassSpec(perClassAccuracy(d.eval.confusion, d.classNames)));
  }
  return charts;
}

export const REPORT_CSS = `
body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin-top:0} .big{font-size:28px;font-weight:bold;color:#2b5f8a}
.cards{display:flex;gap:16px;flex-wrap:wrap} .card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:150px}
.card .label{color:#666;font-size:12px} .charts{display:flex;flex-wrap:wrap;gap:12px} figure{margin:0}
table{border-collapse:collapse;font-size:13px} th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
table.kv th{background:#f6f6f6;font-weight:normal;color:#444} pre{background:#f6f6f6;padding:10px;overflow:auto;font-size:12px;max-height:480px}
code{font-size:12px;word-break:break-word} td{max-width:640px} .warn{color:#a33} h3{font-size:15px;margin:18px 0 6px}
${INTERPRET_CSS}`;

/** A self-contained HTML page (inline SVG charts and CSS, no script, nothing fetched). */
export async function renderReportHtml(d: ReportData): Promise<string> {
  const charts = await reportCharts(d);
  const last = d.metrics.at(-1);
  const best = d.metrics.reduce<EpochMetrics | undefined>((b, m) => (!b || m.val_top1 > b.val_top1 ? m : b), undefined);
  const total = d.metrics.reduce((s, m) => s + m.seconds, 0);
  const ips = d.metrics.length ? d.metrics.reduce((s, m) => s + m.images_per_sec, 0) / d.metrics.length : NaN;
  const fig = (id: string) => (charts[id] ? `<figure id="chart-${id}" class="chart">${charts[id]}</figure>` : '');
  const perClass = d.eval ? perClassAccuracy(d.eval.confusion, d.classNames) : [];
  const plugins = d.config.plugins.length
    ? `<table><tr><th>plugin</th><th>key</th><th>package</th><th>options (defaults filled in)</th></tr>${d.config.plugins
        .map(
          (p) =>
            `<tr><td>${esc(p.name)}</td><td>${esc(p.key)}</td><td>${esc(p.source)}</td><td><code>${esc(JSON.stringify(p.options))}</code></td></tr>`,
        )
        .join('')}</table>`
    : '<p>No plugins: the plain trainer.</p>';
  const { modules: _m, ...config } = d.config as ResolvedConfig & { modules?: unknown };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(d.title)}</title><style>${REPORT_CSS}</style></head>
<body>
<h1>${esc(d.title)}</h1>
<p class="sub">${esc(d.out)} · ${esc(d.createdAt)}${d.config.presets.length ? ` · presets: ${esc(d.config.presets.join(', '))}` : ''}</p>
${d.stopped ? `<p class="warn">Stopped early: ${esc(d.stopped)}</p>` : ''}
<div class="cards">
 <div class="card"><div class="label">val top-1 (last epoch)</div><div class="big" id="final-top1">${pct(last?.val_top1)}</div></div>
 <div class="card"><div class="label">val top-5 (last epoch)</div><div class="big">${pct(last?.val_top5)}</div></div>
 <div class="card"><div class="label">best val top-1</div><div class="big">${pct(best?.val_top1)}</div><div class="label">epoch ${best?.epoch ?? '–'}</div></div>
 <div class="card"><div class="label">backend</div><div class="big" id="backend">${esc(d.backend)}</div></div>
 <div class="card"><div class="label">training images/s (mean over epochs)</div><div class="big" id="images-per-sec">${Number.isFinite(ips) ? ips.toFixed(0) : '–'}</div></div>
</div>
<h2>Run</h2>
${table([
  ['model', `${esc(d.model.name)} (${d.model.parameters.toLocaleString('en-US')} parameters)`],
  ['data', `${esc(d.config.data)}: ${d.data.train} train, ${d.data.val} val, ${d.data.shape.join('×')}, ${d.data.numClasses} classes`],
  ['epochs', `${d.metrics.length} of ${d.config.epochs}, batch ${d.config.batchSize}`],
  ['optimizer', `<code>${esc(JSON.stringify(d.config.optimizer))}</code>`],
  ['schedule', `<code>${esc(JSON.stringify(d.config.schedule))}</code>`],
  ['backend', esc(d.backend)],
  ['time', `${secs(total)} (training + evaluation)`],
  ['seed', String(d.config.seed)],
])}
<h2>Curves</h2>
<div class="charts">${fig('loss')}${fig('accuracy')}${fig('lr')}${fig('speed')}</div>
<h2>Per class (last epoch, ${d.eval?.count ?? 0} validation images)</h2>
<div class="charts">${fig('confusion')}${fig('perClass')}</div>
${perClass.length ? `<details><summary>Per-class table</summary><table><tr><th>class</th><th>images</th><th>top-1</th></tr>${perClass.map((r) => `<tr><td>${esc(r.name)}</td><td>${r.count}</td><td>${pct(r.accuracy)}</td></tr>`).join('')}</table></details>` : ''}
${interpretationHtml(d.interpretation)}
<h2>Plugins in effect</h2>
${plugins}
<h2>Epochs</h2>
<table><tr><th>epoch</th><th>train loss</th><th>val loss</th><th>val top-1</th><th>val top-5</th><th>lr</th><th>images/s</th><th>seconds</th></tr>
${d.metrics.map((m) => `<tr><td>${m.epoch}</td><td>${m.train_loss.toFixed(4)}</td><td>${m.val_loss.toFixed(4)}</td><td>${pct(m.val_top1)}</td><td>${pct(m.val_top5)}</td><td>${m.lr.toPrecision(3)}</td><td>${m.images_per_sec.toFixed(0)}</td><td>${m.seconds.toFixed(1)}</td></tr>`).join('\n')}
</table>
<h2>Artifacts</h2>
<ul>${d.artifacts.map((a) => `<li><b>${esc(a.format)}</b>: ${esc(a.dir)} (${a.files.map(esc).join(', ')})</li>`).join('')}</ul>
<h2>Resolved config</h2>
<pre id="config">${esc(JSON.stringify(config, null, 2))}</pre>
</body></html>
`;
}

/** report.html in the run's output folder. */
@injectable()
export class HtmlReporter implements Reporter {
  constructor(@inject(INTERPRETER) @optional() private readonly interpreter?: Interpreter) {}

  async write(ctx: TrainContext, result: RunResult, lastEval?: EvalResult): Promise<string> {
    const ev = lastEval ?? (ctx.metrics.length ? await ctx.evaluate() : undefined);
    const options = interpretOptions(ctx.config);
    let interpretation: Interpretation | undefined;
    if (options && this.interpreter && ctx.metrics.length)
      try {
        interpretation = await this.interpreter.interpret(ctx, options);
        if (interpretation)
          ctx.logger.info(`report: interpretation of ${interpretation.images} validation images in ${interpretation.seconds.toFixed(1)} s`);
      } catch (e) {
        ctx.logger.warn(`report.html without its interpretation: ${(e as Error).message}`);
      }
    const data: ReportData = {
      title: `tricks run: ${ctx.config.model.name} on ${ctx.config.data}`,
      out: result.out,
      createdAt: new Date().toISOString(),
      config: ctx.config,
      backend: ctx.backend,
      model: { name: ctx.config.model.name, parameters: ctx.model.countParams() },
      data: { train: ctx.train.length, val: ctx.val.length, shape: [...ctx.inputShape], numClasses: ctx.numClasses },
      classNames: ctx.train.classNames ?? [],
      metrics: result.epochs,
      eval: ev,
      stopped: result.stopped,
      artifacts: result.artifacts
        .filter((a, i, all) => all.findIndex((x) => x.format === a.format && x.dir === a.dir) === i)
        .map((a) => ({ format: a.format, dir: a.dir, files: a.files, report: a.report })),
      interpretation,
    };
    const file = join(result.out, 'report.html');
    await writeFileAtomic(file, await renderReportHtml(data));
    return file;
  }
}
