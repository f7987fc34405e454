import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import cliProgress from 'cli-progress';
import { Command, Option } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { ConsoleLogger, TricksError, type Batch, type Logger } from '@tricks/core';
import { decodeImage, IMAGE_EXT } from '@tricks/data';
import { openDeployed, type DeployedModel } from '@tricks/export';
import { cliServices } from './services.js';
import { formatEta } from './progress.js';
import { savedEvaluation } from './saved-model.js';
import { int } from './flags.js';

/** One file's answer: the top classes with their probabilities, best first. */
export interface Prediction {
  file: string;
  top: { index: number; class: string; probability: number }[];
}

/** The image files of the arguments: files as given, folders walked (sorted, hidden entries skipped). */
export function imageFiles(inputs: string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith('.')) continue;
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (IMAGE_EXT.has(extname(name).toLowerCase())) out.push(p);
    }
  };
  for (const input of inputs) {
    let st;
    try {
      st = statSync(input);
    } catch {
      throw new TricksError(`${input} does not exist`, 'give image files or folders of images');
    }
    if (st.isDirectory()) walk(input);
    else out.push(input);
  }
  return out;
}

/** How an image becomes the model's input: size and channels, and the resize of the run's evaluation. */
export function decodeSpec(m: DeployedModel): {
  size: [number, number];
  channels: 1 | 3;
  mode: 'cover' | 'fill' | 'contain';
  cropPct: number;
  text: string;
} {
  const [h, w, c] = m.inputShape;
  // a gray network's export takes RGB with the conversion inside (meta.gray); decoding to gray as its training
  // data was (sharp's greyscale), tiled to R = G = B by the transform, gives the training input exactly
  const channels = m.meta?.gray || (m.meta?.channels ?? c) === 1 ? 1 : 3;
  const size: [number, number] = m.meta ? [m.meta.inputSize[0], m.meta.inputSize[1]] : [h, w];
  // an export's inference metadata, else the resize its run's validation set recorded (tricks.resize); a model saved
  // before datasets recorded it gets the folder format's defaults for its size
  const policy =
    m.meta?.resize ??
    m.tricks?.resize ??
    (Math.max(h, w) > 64 ? { policy: 'resize-shorter-crop' as const, cropPct: 0.875 } : { policy: 'resize' as const });
  const crop = policy.policy === 'resize-shorter-crop';
  const pad = policy.policy === 'resize-longer-pad';
  const cropPct = crop ? (policy.cropPct ?? 1) : 1;
  const text = crop
    ? `shorter side to ${Math.floor(size[0] / cropPct)}, centre crop ${size.join('x')}`
    : pad
      ? `fitted inside ${size.join('x')}, padded black`
      : `resized to ${size.join('x')}`;
  return {
    size,
    channels,
    mode: crop ? 'cover' : pad ? 'contain' : 'fill',
    cropPct,
    text: `${text}, ${channels === 1 ? 'grayscale' : 'RGB'}`,
  };
}

/** Softmax of each row of logits (or the probabilities a model outputs), top k. */
function topK(scores: Float32Array, classes: number, row: number, k: number, names: string[], logits: boolean) {
  const s = scores.subarray(row * classes, (row + 1) * classes);
  let p: Float64Array;
  if (logits) {
    const max = s.reduce((a, b) => Math.max(a, b), -Infinity);
    const e = Float64Array.from(s, (v) => Math.exp(v - max));
    const sum = e.reduce((a, b) => a + b, 0);
    p = e.map((v) => v / sum);
  } else p = Float64Array.from(s);
  return [...p.keys()]
    .sort((a, b) => p[b] - p[a])
    .slice(0, k)
    .map((index) => ({ index, class: names[index] ?? String(index), probability: p[index] }));
}

/**
 * Classifies image files with a saved model: each file is decoded with sharp and prepared as the model's metadata
 * says (a training model: as its run's evaluation did), then run in batches. Unreadable files are named and skipped.
 */
export async function predictFiles(
  modelDir: string,
  inputs: string[],
  o: { top: number; batchSize: number; threads?: number; logger: Logger; onResult: (p: Prediction) => void; progress?: boolean },
): Promise<{ predicted: number; skipped: { file: string; reason: string }[] }> {
  const files = imageFiles(inputs);
  if (!files.length)
    throw new TricksError(`no images (${[...IMAGE_EXT].join(', ')}) in ${inputs.join(', ')}`, 'give image files or folders of images');
  const m = await openDeployed(modelDir, { threads: o.threads });
  const skipped: { file: string; reason: string }[] = [];
  let predicted = 0;
  try {
    const spec = decodeSpec(m);
    const names = m.meta?.classNames ?? m.tricks?.classNames ?? [];
    const ev = await savedEvaluation(m, {}, o.logger, names.length || 1);
    o.logger.info(`model: ${m.file} (${m.format === 'onnx' ? 'onnxruntime-node' : 'tfjs'}); images: ${spec.text}; inputs: ${ev.describe}`);
    const [h, w] = spec.size;
    const per = h * w * spec.channels;
    const started = performance.now();
    const bar =
      o.progress && files.length > 1
        ? new cliProgress.SingleBar(
            { format: 'predict [{bar}] {value}/{total} {ips} img/s eta {left}', stream: process.stderr, clearOnComplete: true },
            cliProgress.Presets.shades_classic,
          )
        : undefined;
    bar?.start(files.length, 0, { ips: '-', left: '-' });
    let lastLine = started;
    for (let i = 0; i < files.length; i += o.batchSize) {
      const chunk = files.slice(i, i + o.batchSize);
      const decoded = await Promise.all(
        chunk.map((f) =>
          decodeImage(f, spec.size, spec.channels, spec.mode, 'truncated', spec.cropPct).then(
            (px) => ({ file: f, px }),
            (e: Error) => {
              skipped.push({ file: f, reason: e.message.split('\n')[0] });
              o.logger.warn(`skipped ${f}: not a readable image (${e.message.split('\n')[0]})`);
              return undefined;
            },
          ),
        ),
      );
      const ok = decoded.filter((d) => d !== undefined);
      if (ok.length) {
        const u8 = new Float32Array(ok.length * per);
        ok.forEach((d, j) => {
          for (let k = 0; k < per; k++) u8[j * per + k] = d.px[k] / 255;
        });
        const x = tf.tensor4d(u8, [ok.length, h, w, spec.channels]);
        const batch = tf.tidy(
          () => ev.transform({ x, y: tf.zeros([ok.length, 1]), meta: {} as never }) as unknown as tf.TensorContainer,
        ) as unknown as Batch;
        const y = await ev.inference(m.model as LayersModel, batch.x);
        const scores = (await y.data()) as Float32Array;
        const classes = y.shape[1];
        tf.dispose([x, batch.x, batch.y, y]);
        ok.forEach((d, j) => o.onResult({ file: d.file, top: topK(scores, classes, j, o.top, names, true) }));
        predicted += ok.length;
      }
      const done = Math.min(i + o.batchSize, files.length);
      const secs = (performance.now() - started) / 1000;
      const left = formatEta(((files.length - done) * secs) / done);
      bar?.update(done, { ips: (done / secs).toFixed(0), left });
      if (!bar && files.length > 1000 && performance.now() - lastLine > 10000) {
        lastLine = performance.now();
        o.logger.info(`predict: ${done}/${files.length} images, ${(done / secs).toFixed(0)} img/s, eta ${left}`);
      }
    }
    bar?.stop();
  } finally {
    await m.dispose();
  }
  if (!predicted)
    throw new TricksError(
      `none of the ${files.length} files could be read as an image`,
      'check the files (the warnings above name each one)',
    );
  return { predicted, skipped };
}

export function registerPredictCommand(program: Command): void {
  program
    .command('predict')
    .description(
      "classify image files with a saved model (a run's model/ or an export: tfjs, fp16, uint8, ONNX); prints class and probability per file",
    )
    .requiredOption('--model <dir>', 'a model folder (model.json, or model.onnx through onnxruntime-node), e.g. runs/q/model')
    .argument('<images...>', 'image files or folders (walked recursively)')
    .option('--top <k>', 'classes per file', int('--top', 1), 1)
    .option('--json', 'one JSON line per file: {"file", "top": [{"index", "class", "probability"}]}')
    .option('--batch-size <n>', 'images per batch', int('--batch-size', 1), 32)
    .option('--threads <n>', 'intra-op threads of onnxruntime-node for an ONNX model (default 1)', int('--threads', 1))
    .addOption(
      new Option('--backend <name>', 'tfjs backend').choices(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']).default('auto'),
    )
    .action(
      async (images: string[], f: { model: string; top: number; json?: boolean; batchSize: number; threads?: number; backend: string }) => {
        for (const [name, v] of [
          ['--top', f.top],
          ['--batch-size', f.batchSize],
        ] as const)
          if (!Number.isInteger(v) || v < 1) throw new TricksError(`${name} ${v}: must be a whole number >= 1`);
        const logger = new ConsoleLogger();
        const services = await cliServices({ logger });
        await services.backend.select(f.backend);
        const r = await predictFiles(f.model, images, {
          top: f.top,
          batchSize: f.batchSize,
          threads: f.threads,
          logger,
          progress: Boolean(process.stderr.isTTY),
          onResult: (p) =>
            process.stdout.write(
              f.json
                ? `${JSON.stringify(p)}\n`
                : `${p.file}\t${p.top.map((t) => `${t.class} ${(t.probability * 100).toFixed(1)}%`).join('\t')}\n`,
            ),
        });
        logger.info(`predict: ${r.predicted} images${r.skipped.length ? `, ${r.skipped.length} skipped (unreadable)` : ''}`);
      },
    );
}
