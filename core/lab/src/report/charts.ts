/**
 * Charts rendered headless with Vega-Lite (compiled to Vega, rendered to SVG by a Vega View with no
 * DOM) and rasterized to PNG with sharp. The libraries are imported on first use, so a run that
 * writes no chart does not pay for loading them.
 */
type Spec = Record<string, unknown>;

let libs: Promise<{ vega: typeof import('vega'); vl: typeof import('vega-lite') }> | undefined;
const loadLibs = () => (libs ??= Promise.all([import('vega'), import('vega-lite')]).then(([vega, vl]) => ({ vega, vl })));

const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';

/** Shared look: a readable font, no external resources. */
const CONFIG = {
  font: FONT,
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14, anchor: 'start' },
  view: { stroke: '#ccc' },
  background: 'white',
};

/** Renders a Vega-Lite spec to an SVG string. */
export async function renderSvg(spec: Spec): Promise<string> {
  const { vega, vl } = await loadLibs();
  const full = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', config: CONFIG, ...spec };
  const compiled = vl.compile(full as Parameters<typeof vl.compile>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Warn });
  try {
    const svg = await view.toSVG();
    // Vega puts the $schema URL nowhere in the SVG; make sure nothing points outside the file.
    return svg;
  } finally {
    view.finalize();
  }
}

/** SVG -> PNG (2x for sharp text). */
export async function svgToPng(svg: string, density = 144): Promise<Buffer> {
  const sharp = (await import('sharp')).default;
  return sharp(Buffer.from(svg), { density }).png().toBuffer();
}

export interface SeriesPoint {
  epoch: number;
  value: number;
  series: string;
}

/** Line chart of one metric per epoch, one line per series. */
export function lineSpec(
  title: string,
  yTitle: string,
  points: SeriesPoint[],
  opts: { logY?: boolean; width?: number; height?: number; zeroY?: boolean } = {},
): Spec {
  return {
    title,
    width: opts.width ?? 420,
    height: opts.height ?? 220,
    data: { values: points.filter((p) => Number.isFinite(p.value)) },
    mark: { type: 'line', point: points.length <= 60, strokeWidth: 2 },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } },
      y: {
        field: 'value',
        type: 'quantitative',
        title: yTitle,
        scale: { ...(opts.logY ? { type: 'log' } : {}), zero: opts.zeroY ?? false },
      },
      color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom' } },
    },
  };
}

/** Heatmap of a confusion matrix, counts in the cells, rows = true class. */
export function confusionSpec(confusion: number[][], classNames: string[]): Spec {
  const names = confusion.map((_, i) => classNames[i] ?? String(i));
  const values: { actual: string; predicted: string; count: number; share: number }[] = [];
  confusion.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((c, j) => values.push({ actual: names[i], predicted: names[j], count: c, share: c / total }));
  });
  const size = Math.min(560, Math.max(220, names.length * 34));
  const showText = names.length <= 20;
  return {
    title: 'Confusion matrix (last epoch, validation)',
    width: size,
    height: size,
    data: { values },
    encoding: {
      x: { field: 'predicted', type: 'ordinal', sort: names, title: 'predicted', axis: { labelAngle: -45, labelLimit: 90 } },
      y: { field: 'actual', type: 'ordinal', sort: names, title: 'true class', axis: { labelLimit: 90 } },
    },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: { field: 'share', type: 'quantitative', title: 'row share', scale: { scheme: 'blues', domain: [0, 1] } },
          tooltip: [{ field: 'actual' }, { field: 'predicted' }, { field: 'count' }],
        },
      },
      ...(showText
        ? [
            {
              mark: { type: 'text', fontSize: names.length > 12 ? 8 : 10 },
              encoding: {
                text: { field: 'count', type: 'quantitative' },
                color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: 'black' },
              },
            },
          ]
        : []),
    ],
  };
}

/** Horizontal bars: accuracy per class. */
export function perClassSpec(rows: { name: string; accuracy: number; count: number }[]): Spec {
  return {
    title: 'Per-class accuracy (last epoch, validation)',
    width: 360,
    height: { step: Math.max(10, Math.min(20, 400 / Math.max(rows.length, 1))) },
    data: { values: rows },
    layer: [
      {
        mark: 'bar',
        encoding: {
          y: { field: 'name', type: 'ordinal', sort: null, title: null, axis: { labelLimit: 120 } },
          x: { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1] }, title: 'top-1' },
          color: { value: '#4c78a8' },
          tooltip: [{ field: 'name' }, { field: 'accuracy', format: '.3f' }, { field: 'count' }],
        },
      },
      {
        mark: { type: 'text', align: 'left', dx: 3, fontSize: 10 },
        encoding: {
          y: { field: 'name', type: 'ordinal', sort: null },
          x: { field: 'accuracy', type: 'quantitative' },
          text: { field: 'accuracy', type: 'quantitative', format: '.1%' },
        },
      },
    ],
  };
}

export interface LadderPoint {
  step: string;
  seed: number;
  top1: number;
}

/** The ablation ladder: each rung's top-1 per seed (dots) and mean ± std (bar and error bar). */
export function ladderSpec(title: string, points: LadderPoint[], order: string[], reference?: { step: string; top1: number }[]): Spec {
  const pct = points.map((p) => ({ ...p, top1: p.top1 * 100 }));
  // the error bars' caps (mean ± sample std, vega-lite's 'stdev') must fit too: with 2 seeds they reach past both dots
  const caps = order.flatMap((step) => {
    const v = pct.filter((p) => p.step === step).map((p) => p.top1);
    if (v.length < 2) return v;
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1));
    return [m - sd, m + sd];
  });
  const lo = Math.min(...pct.map((p) => p.top1), ...caps, ...(reference ?? []).map((r) => r.top1));
  const hi = Math.max(...pct.map((p) => p.top1), ...caps, ...(reference ?? []).map((r) => r.top1));
  const pad = Math.max(0.5, (hi - lo) * 0.15);
  const domain = [Math.max(0, Math.floor((lo - pad) * 2) / 2), Math.min(100, Math.ceil((hi + pad) * 2) / 2)];
  const x = { field: 'step', type: 'ordinal', sort: order, title: null, axis: { labelAngle: -20, labelLimit: 180 } };
  const y = { type: 'quantitative', scale: { domain, zero: false }, title: 'val top-1 (%)' };
  return {
    title,
    width: Math.max(320, order.length * 110),
    height: 260,
    layer: [
      {
        data: { values: pct },
        mark: { type: 'point', filled: true, size: 45, opacity: 0.55, color: '#555' },
        encoding: { x, y: { field: 'top1', ...y }, tooltip: [{ field: 'step' }, { field: 'seed' }, { field: 'top1', format: '.2f' }] },
      },
      {
        data: { values: pct },
        mark: { type: 'errorbar', extent: 'stdev', ticks: { size: 14 }, thickness: 1.5, color: '#e45756' },
        encoding: { x, y: { field: 'top1', ...y } },
      },
      {
        data: { values: pct },
        mark: { type: 'line', color: '#4c78a8', point: { size: 80, color: '#4c78a8' } },
        encoding: { x, y: { field: 'top1', aggregate: 'mean', ...y } },
      },
      {
        data: { values: pct },
        mark: { type: 'text', dy: -14, fontSize: 11, color: '#4c78a8' },
        encoding: {
          x,
          y: { field: 'top1', aggregate: 'mean', ...y },
          text: { field: 'top1', aggregate: 'mean', type: 'quantitative', format: '.2f' },
        },
      },
      ...(reference?.length
        ? [
            {
              data: { values: reference },
              mark: { type: 'tick', color: '#72b7b2', thickness: 2, size: 30 },
              encoding: { x, y: { field: 'top1', ...y } },
            },
          ]
        : []),
    ],
  };
}

/** Small multiples: one panel per metric, a line per ladder rung (mean over seeds). */
export function curvesSpec(
  points: { epoch: number; step: string; metric: string; value: number }[],
  order: string[],
  metrics: string[],
): Spec {
  return {
    data: { values: points.filter((p) => Number.isFinite(p.value)) },
    facet: { column: { field: 'metric', type: 'nominal', sort: metrics, title: null } },
    spec: {
      width: 300,
      height: 200,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1, format: 'd' } },
        y: { field: 'value', type: 'quantitative', aggregate: 'mean', scale: { zero: false }, title: 'mean over seeds' },
        color: {
          field: 'step',
          type: 'nominal',
          sort: order,
          title: 'ladder step',
          legend: { orient: 'bottom', columns: 2, labelLimit: 260 },
        },
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
}
