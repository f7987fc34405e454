/**
 * The extra files of an export for the browser: `tricks-layers.js` (the custom layers a model still has,
 * registered with the global `tf` of tf.min.js; one script tag) and, for the `web` format, a static demo page
 * `index.html` with a local copy of tf.min.js: pick or drop an image, see the top 5 classes with probabilities.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { TricksError } from '@tricks/core';
import type { InferenceMeta } from './inference.js';

export const RUNTIME_SCRIPT = 'tricks-layers.js';
export const TF_SCRIPT = 'tf.min.js';

const require = createRequire(import.meta.url);

/** The bytes of @tensorflow/tfjs's browser bundle (dist/tf.min.js: core, layers, the cpu and webgl backends). */
export function tfMinJs(): Uint8Array {
  let file: string;
  try {
    file = join(dirname(require.resolve('@tensorflow/tfjs/package.json')), 'dist', TF_SCRIPT);
    return readFileSync(file);
  } catch (e) {
    throw new TricksError(
      `export web: cannot read @tensorflow/tfjs's ${TF_SCRIPT} (${(e as Error).message})`,
      'install @tensorflow/tfjs (npm install @tensorflow/tfjs): the page ships its own copy',
    );
  }
}

/**
 * @tricks/models' runtime module (ES module over tfjs-core and tfjs-layers) as one classic script over the
 * global `tf`: its two imports become `globalThis.tf`, its exports plain declarations.
 */
export function runtimeScript(): string {
  const file = require.resolve('@tricks/models/runtime');
  let src = readFileSync(file, 'utf8');
  const imports = [
    [/^import \* as tf from '@tensorflow\/tfjs-core';$/m, 'const tf = globalThis.tf;'],
    [/^import \* as tfl from '@tensorflow\/tfjs-layers';$/m, 'const tfl = globalThis.tf;'],
  ] as const;
  for (const [re, by] of imports) {
    if (!re.test(src)) throw new Error(`${file}: the runtime module's imports changed; ${RUNTIME_SCRIPT} cannot be made from it`);
    src = src.replace(re, by);
  }
  src = src.replace(/^export (class|function|const) /gm, '$1 ').replace(/^\/\/# sourceMappingURL=.*$/m, '');
  if (/^\s*(import|export)\b/m.test(src))
    throw new Error(`${file}: the runtime module has imports or exports left; ${RUNTIME_SCRIPT} cannot be made from it`);
  return `// The custom layers of tricks (@tricks/models/runtime), registered with the global tf of tf.min.js.
// Load it after tf.min.js and before tf.loadLayersModel: <script src="${RUNTIME_SCRIPT}"></script>
(function () {
  'use strict';
  if (!globalThis.tf) throw new Error('${RUNTIME_SCRIPT}: load ${TF_SCRIPT} first');
${src}
})();
`;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** The demo page: static, it loads only tf.min.js, the runtime script if any, model.json and its weights. */
export function demoPage(meta: InferenceMeta, title = 'tricks model'): string {
  const scripts = [TF_SCRIPT, ...(meta.runtime ? [meta.runtime] : [])].map((s) => `<script src="${s}"></script>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  #drop { display: block; border: 2px dashed #999; border-radius: 8px; padding: 1.5rem; text-align: center; cursor: pointer; }
  #drop input { margin-top: .75rem; }
  #drop.over { border-color: #06c; background: #eef5ff; }
  #preview { width: 12rem; height: auto; margin: 1rem auto; display: block; image-rendering: pixelated; }
  #preview:not([src]) { display: none; }
  ol { padding-left: 1.5rem; } li { margin: .25rem 0; }
  .bar { display: inline-block; height: .7rem; background: #06c; vertical-align: middle; margin-left: .5rem; }
  #status { color: #666; } .meta { color: #666; font-size: 13px; }
</style>
${scripts}
</head>
<body>
<h1>${esc(title)}</h1>
<p id="status">loading the model...</p>
<label id="drop">Drop an image here, or click to pick one<br><input id="file" type="file" accept="image/*"></label>
<img id="preview" alt="">
<ol id="top5"></ol>
<p class="meta" id="about"></p>
<script>
(async () => {
  const status = document.getElementById('status');
  let model, meta;
  try {
    model = await tf.loadLayersModel('model.json');
    meta = model.getUserDefinedMetadata().inference;
  } catch (e) {
    status.textContent = 'cannot load model.json: ' + e.message + ' (serve this folder over http, e.g. npx http-server)';
    return;
  }
  const [h, w] = meta.inputSize;
  document.getElementById('about').textContent =
    'input ' + h + 'x' + w + ', ' + meta.classNames.length + ' classes, resize ' + meta.resize.policy +
    (meta.resize.cropPct ? ' (cropPct ' + meta.resize.cropPct + ')' : '') + ', backend ' + tf.getBackend();

  // The image at the model's input size, as the run's evaluation did it (the browser's smoothing for the resize).
  function toCanvas(img) {
    const c = document.createElement('canvas');
    c.width = w; c.height = h;
    const g = c.getContext('2d');
    g.imageSmoothingEnabled = true; g.imageSmoothingQuality = 'high';
    const H = img.naturalHeight, W = img.naturalWidth, r = meta.resize;
    if (r.policy === 'resize-shorter-crop') {
      // cover floor(size / cropPct), keep its centre size: a source box of (h, w) * s in the image
      const p = r.cropPct || 1, bh = Math.floor(h / p + 1e-9), bw = Math.floor(w / p + 1e-9);
      const s = Math.max(bh / H, bw / W), sh = h / s, sw = w / s;
      g.drawImage(img, (W - sw) / 2, (H - sh) / 2, sw, sh, 0, 0, w, h);
    } else if (r.policy === 'resize-longer-pad') {
      const s = Math.min(h / H, w / W), dh = Math.round(H * s), dw = Math.round(W * s);
      g.fillStyle = '#000'; g.fillRect(0, 0, w, h);
      g.drawImage(img, Math.floor((w - dw) / 2), Math.floor((h - dh) / 2), dw, dh);
    } else g.drawImage(img, 0, 0, w, h);
    return c;
  }

  async function classify(img) {
    const probs = tf.tidy(() => {
      let x = tf.browser.fromPixels(toCanvas(img), 3).toFloat();
      if (meta.channels === 1) x = x.mul(tf.tensor1d((meta.gray || { weights: [0.299, 0.587, 0.114] }).weights)).sum(-1, true);
      if (meta.input === 'normalized') x = x.mul(tf.tensor1d(meta.preprocessing.scale)).add(tf.tensor1d(meta.preprocessing.offset));
      const y = model.predict(x.expandDims(0));
      return meta.output === 'logits' ? tf.softmax(y) : y;
    });
    const p = await probs.data();
    probs.dispose();
    const top = Array.from(p, (v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 5);
    const ol = document.getElementById('top5');
    ol.innerHTML = '';
    for (const [v, i] of top) {
      const li = document.createElement('li');
      li.dataset.index = String(i);
      li.dataset.prob = String(v);
      li.textContent = meta.classNames[i] + ': ' + (100 * v).toFixed(1) + ' %';
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = (10 * v).toFixed(2) + 'rem';
      li.appendChild(bar);
      ol.appendChild(li);
    }
    status.textContent = 'top class: ' + meta.classNames[top[0][1]];
  }

  async function open(file) {
    if (!file) return;
    const img = document.getElementById('preview');
    img.src = URL.createObjectURL(file);
    try {
      await img.decode();
    } catch {
      status.textContent = file.name + ': not an image the browser can read';
      return;
    }
    await classify(img);
  }
  const drop = document.getElementById('drop');
  document.getElementById('file').addEventListener('change', (e) => open(e.target.files[0]));
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); open(e.dataTransfer.files[0]); });
  status.textContent = 'ready: pick or drop an image';
})();
</script>
</body>
</html>
`;
}
