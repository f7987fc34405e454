/**
 * report.html's interpretation section, a service (INTERPRETER): a gallery of the top losses, the most-confused
 * pairs and Grad-CAM heatmaps, as fastai's ClassificationInterpretation and its Grad-CAM tutorial have them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { inject, injectable, optional } from 'inversify';
import { type InferenceForward, type ResolvedConfig, TOKENS, type TrainContext, toBatch, validate } from '@tricks/core';
import { camLayer, gradCam, mostConfused, sampleResults, topLosses } from './interpret.js';

/** `report.interpret` in a config (false turns the section off). */
export interface InterpretOptions {
  /** Images in the top-losses gallery (0: none). */
  topLosses: number;
  /** Grad-CAM heatmaps for this many top losses and as many correct images (0: none). */
  gradcam: number;
  /** Pairs listed under most confused need at least this count (fastai's min_val). */
  minVal: number;
  /** At most this many validation images are looked at (evenly spaced through the set). */
  maxImages: number;
  /** The layer Grad-CAM reads (default: the last with a 4-D output larger than 1x1). */
  layer?: string;
}

export const INTERPRET_DEFAULTS: InterpretOptions = { topLosses: 16, gradcam: 4, minVal: 1, maxImages: 10000 };

/** The schema of config.report (core's settings schema leaves its inside to this package). */
export const REPORT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    interpret: {
      type: ['boolean', 'object'],
      additionalProperties: false,
      properties: {
        topLosses: { type: 'integer', minimum: 0 },
        gradcam: { type: 'integer', minimum: 0 },
        minVal: { type: 'integer', minimum: 1 },
        maxImages: { type: 'integer', minimum: 1 },
        layer: { type: 'string' },
      },
    },
  },
};

/** The run's interpretation options, or undefined when `report.interpret` is false (a bad value: one TricksError). */
export function interpretOptions(config: Pick<ResolvedConfig, 'report'>): InterpretOptions | undefined {
  const report = structuredClone(config.report ?? {});
  validate(REPORT_SCHEMA, report, 'config', 'report');
  const o = report.interpret ?? true;
  return o === false ? undefined : { ...INTERPRET_DEFAULTS, ...(o === true ? {} : (o as Partial<InterpretOptions>)) };
}

/** One image of the page: its position in the validation set, labels, loss, and PNG data URIs. */
export interface InterpretImage {
  index: number;
  actual: string;
  predicted: string;
  loss: number;
  prob: number;
  /** The raw image (not the normalized tensor), upscaled by nearest neighbour when small. */
  png: string;
  /** Grad-CAM of the predicted class over the image, and the largest value of the map (0: no positive evidence). */
  cam?: string;
  camMax?: number;
}

/** What the section shows: plain data, so a report can be rendered without a trainer. */
export interface Interpretation {
  /** Validation images looked at, and of how many. */
  images: number;
  of: number;
  topLosses: InterpretImage[];
  minVal: number;
  mostConfused: { actual: string; predicted: string; count: number }[];
  gradcam?: { layer: string; shape: number[]; wrong: InterpretImage[]; correct: InterpretImage[] };
  seconds: number;
}

/** The interpretation service (INTERPRETER): rebind it to change the section, or set report.interpret: false. */
export interface Interpreter {
  interpret(ctx: TrainContext, options: InterpretOptions): Promise<Interpretation | undefined>;
}

/** Token of the Interpreter service (bound by reportModule). */
export const INTERPRETER = Symbol.for('tricks.Interpreter');

/** matplotlib's jet, v in [0, 1] -> r, g, b in [0, 1]. */
const jet = (v: number) => [3, 2, 1].map((o) => Math.min(1, Math.max(0, 1.5 - Math.abs(4 * v - o))));

/** Display size: small images upscaled by a whole factor to about 96 px and more, large ones down to 128 px. */
const displaySize = (h: number, w: number) => {
  const m = Math.max(h, w);
  const s = m > 128 ? 128 / m : Math.ceil(96 / m);
  return [Math.max(1, Math.round(h * s)), Math.max(1, Math.round(w * s))] as const;
};

/** An HWC uint8 image (1 or 3+ channels) as RGB at display size. */
async function displayPixels(u8: Uint8Array, [h, w, c]: readonly number[]): Promise<{ rgb: Buffer; dh: number; dw: number }> {
  const sharp = (await import('sharp')).default;
  const rgb = Buffer.alloc(h * w * 3);
  for (let p = 0; p < h * w; p++) for (let j = 0; j < 3; j++) rgb[p * 3 + j] = u8[p * c + (c >= 3 ? j : 0)];
  const [dh, dw] = displaySize(h, w);
  const out = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
    .resize(dw, dh, { kernel: dh >= h ? 'nearest' : 'lanczos3', fit: 'fill' })
    .raw()
    .toBuffer();
  return { rgb: out, dh, dw };
}

async function pngUri(rgb: Buffer, h: number, w: number): Promise<string> {
  const sharp = (await import('sharp')).default;
  const png = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** The image blended half and half with the jet colouring of the map divided by its maximum (pytorch-grad-cam's look). */
function overlay(rgb: Buffer, map: Float32Array, max: number): Buffer {
  const out = Buffer.alloc(rgb.length);
  for (let p = 0; p < map.length; p++) {
    const col = jet(max > 0 ? map[p] / max : 0);
    for (let j = 0; j < 3; j++) out[p * 3 + j] = Math.round(0.5 * rgb[p * 3 + j] + 127.5 * col[j]);
  }
  return out;
}

/** fastai's ClassificationInterpretation on the validation set at the end of the run, with Grad-CAM. */
@injectable()
export class ClassificationInterpreter implements Interpreter {
  /** `inference`: the run's evaluation forward (TOKENS.Inference), so the losses are the ones val_loss averages. */
  constructor(@inject(TOKENS.Inference) @optional() private readonly inference?: InferenceForward) {}

  async interpret(ctx: TrainContext, o: InterpretOptions): Promise<Interpretation | undefined> {
    const t0 = performance.now();
    const val = ctx.val;
    if (!val.length) return undefined;
    const n = Math.min(val.length, o.maxImages);
    const indices = Int32Array.from({ length: n }, (_, i) => Math.floor((i * val.length) / n));
    const r = await sampleResults(ctx.model, val, indices, ctx.evalBatchSize, (b) => ctx.evalTransform(b), this.inference);
    const names = ctx.train.classNames ?? val.classNames ?? [];
    const name = (i: number) => names[i] ?? String(i);
    const top = topLosses(r.loss, o.topLosses);
    // correct images for Grad-CAM: the most confident of each class, for the first `gradcam` classes that have one
    const best = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const b = best.get(r.labels[i]);
      if (r.pred[i] === r.labels[i] && (b === undefined || r.prob[i] > r.prob[b])) best.set(r.labels[i], i);
    }
    const correct = [...best.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([, i]) => i)
      .slice(0, o.gradcam);
    const wrong = top.filter((i) => r.pred[i] !== r.labels[i]).slice(0, o.gradcam);
    const shown = [...new Set([...top, ...wrong, ...correct])];
    const raw = shown.length ? await val.getBatch(Int32Array.from(shown, (i) => indices[i])) : undefined;
    const size = val.shape[0] * val.shape[1] * val.shape[2];
    const images = new Map<number, InterpretImage & { rgb: Buffer; dh: number; dw: number }>();
    for (const [j, i] of shown.entries()) {
      const d = await displayPixels(raw!.images.subarray(j * size, (j + 1) * size), val.shape);
      const item = { index: indices[i], actual: name(r.labels[i]), predicted: name(r.pred[i]), loss: r.loss[i], prob: r.prob[i] };
      images.set(i, { ...item, ...d, png: await pngUri(d.rgb, d.dh, d.dw) });
    }
    const at = wrong.length + correct.length ? camLayer(ctx.model, o.layer) : undefined;
    let gradcam: Interpretation['gradcam'];
    if (at) {
      const cams = [...wrong, ...correct];
      const pos = cams.map((i) => shown.indexOf(i));
      const x = tf.tidy(() => {
        const b = toBatch({ images: raw!.images, labels: raw!.labels, indices: Int32Array.from(shown) }, val.shape, val.numClasses);
        return tf.gather(ctx.evalTransform(b).x, pos) as tf.Tensor4D;
      });
      const [dh, dw] = displaySize(val.shape[0], val.shape[1]);
      const { cam, up } = gradCam(
        ctx.model,
        x,
        Array.from(cams, (i) => r.pred[i]),
        at,
        [dh, dw],
      );
      const [maps, maxes] = [await up.data(), await tf.max(cam, [1, 2]).data()];
      tf.dispose([x, cam, up]);
      for (const [j, i] of cams.entries()) {
        const im = images.get(i)!;
        im.camMax = maxes[j];
        im.cam = await pngUri(overlay(im.rgb, maps.subarray(j * dh * dw, (j + 1) * dh * dw) as Float32Array, maxes[j]), dh, dw);
      }
      const shape = at.shape.slice(1);
      const plain = ({ rgb: _r, dh: _h, dw: _w, ...im }: InterpretImage & { rgb: Buffer; dh: number; dw: number }) => im;
      gradcam = {
        layer: at.name,
        shape,
        wrong: wrong.map((i) => plain(images.get(i)!)),
        correct: correct.map((i) => plain(images.get(i)!)),
      };
    }
    return {
      images: n,
      of: val.length,
      topLosses: top.map((i) => {
        const { rgb: _r, dh: _h, dw: _w, cam: _c, camMax: _m, ...im } = images.get(i)!;
        return im;
      }),
      minVal: o.minVal,
      mostConfused: mostConfused(r.confusion, names, o.minVal),
      gradcam,
      seconds: (performance.now() - t0) / 1000,
    };
  }
}

/** HTML-escapes a value (report.ts's too). */
export const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export const INTERPRET_CSS = `
.gallery{display:flex;flex-wrap:wrap;gap:10px} .gallery figure{font-size:11px;color:#444;text-align:center}
.gallery img{display:block;margin:0 auto 2px;border:1px solid #ddd} .pair{display:flex;gap:2px}
#most-confused{columns:4 180px;font-size:13px;margin:6px 0}
`;

/** The section's HTML (empty without an interpretation). */
export function interpretationHtml(it: Interpretation | undefined): string {
  if (!it) return '';
  const capped = it.images < it.of ? ` (of ${it.of}, evenly spaced: report.interpret.maxImages)` : '';
  const fig = (im: InterpretImage, cls: string, body: string, caption: string) =>
    `<figure class="${cls}" data-index="${im.index}" data-loss="${im.loss}">${body}<figcaption>${caption}</figcaption></figure>`;
  const img = (src: string, alt: string) => `<img src="${src}" alt="${esc(alt)}">`;
  const label = (im: InterpretImage) => `<b>${esc(im.predicted)}</b> / ${esc(im.actual)} / ${im.loss.toFixed(2)} / ${im.prob.toFixed(2)}`;
  const tops = it.topLosses.map((im) => fig(im, 'top-loss', img(im.png, `validation image ${im.index}`), label(im))).join('');
  const shown = it.mostConfused.slice(0, 40);
  const more = it.mostConfused.length - shown.length;
  const confused = shown.length
    ? `<ol id="most-confused">${shown
        .map((c) => `<li data-count="${c.count}"><b>${esc(c.actual)}</b> as <b>${esc(c.predicted)}</b>: ${c.count}</li>`)
        .join('')}</ol>${more ? `<p>and ${more} more pairs.</p>` : ''}`
    : `<p>No pair was confused ${it.minVal} times or more.</p>`;
  const g = it.gradcam;
  const cam = (im: InterpretImage) =>
    fig(
      im,
      'gradcam',
      `<div class="pair">${img(im.png, `validation image ${im.index}`)}${img(im.cam!, `Grad-CAM of ${im.predicted}`)}</div>`,
      `${label(im)}${im.camMax ? '' : '<br>(no positive evidence)'}`,
    );
  const gradcam = g
    ? `<h3>Grad-CAM</h3><p class="sub">Selvaraju et al. 2017, for the predicted class, on <code>${esc(g.layer)}</code> (${g.shape.join('×')}),
upsampled bilinearly; red is where the predicted class's score grows most with the layer's activations. First the
${g.wrong.length} misclassified images with the largest losses, then ${g.correct.length} correct ones (the most
confident of each of the first classes).</p><div class="gallery" id="gradcam">${[...g.wrong, ...g.correct].map(cam).join('')}</div>`
    : '';
  return `<h2 id="interpretation">Interpretation</h2>
<p class="sub">fastai's ClassificationInterpretation: the final model on ${it.images} validation images${capped}, with the
evaluation transforms, in ${it.seconds.toFixed(1)} s. Captions: predicted / actual / loss / probability of the predicted class.</p>
${it.topLosses.length ? `<h3>Top losses</h3><div class="gallery" id="top-losses">${tops}</div>` : ''}
<h3>Most confused</h3><p class="sub">Actual as predicted: the off-diagonal cells of these images' confusion matrix with a count of at least ${it.minVal} (report.interpret.minVal), largest first.</p>
${confused}
${gradcam}`;
}
