// A third-party plugin package that extends the trainer through DI, with no tap at all: it replaces
// the optimizer service, adds a dataset format and adds a metrics sink. docs/extending.md walks through it.
import { appendFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ContainerModule } from 'inversify';
import { definePlugin, InMemoryDataset, METRIC_KEYS, OptimizerRegistry, TOKENS, TricksOptimizer } from '@tricks/core';

/**
 * Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"):
 * c = b1 m + (1 - b1) g; w -= lr (sign(c) + wd w); m = b2 m + (1 - b2) g.
 */
export class Lion extends TricksOptimizer {
  static get className() {
    return 'AcmeLion';
  }
  constructor(opts) {
    super(opts);
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.99;
  }
  update(name, value, grad, decay) {
    const m = this.slot(name, 'm', value);
    const c = tf.add(tf.mul(m, this.beta1), tf.mul(grad, 1 - this.beta1));
    const step = decay ? tf.add(tf.sign(c), tf.mul(value, decay)) : tf.sign(c);
    value.assign(tf.sub(value, tf.mul(step, this.learningRate)));
    m.assign(tf.add(tf.mul(m, this.beta2), tf.mul(grad, 1 - this.beta2)));
  }
  getConfig() {
    return { lr: this.learningRate, beta1: this.beta1, beta2: this.beta2, weightDecay: this.weightDecay };
  }
}

/** The optimizer service, replaced: the core's optimizers plus "lion". */
export class AcmeOptimizers extends OptimizerRegistry {
  constructor() {
    super();
    this.register('lion', (o) => new Lion(o));
  }
}

/** A dataset format, `--data stripes`: horizontal (0) or vertical (1) stripes of random period and phase. */
export function stripes(options = {}) {
  const size = options.size ?? 16;
  let s = (options.seed ?? 1) >>> 0;
  const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const make = (n, name) => {
    const images = new Uint8Array(n * size * size);
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const label = i % 2;
      const period = 2 + Math.floor(rand() * 4);
      const phase = Math.floor(rand() * period);
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) images[(i * size + y) * size + x] = ((label ? x : y) + phase) % period < period / 2 ? 255 : 0;
      }
      labels[i] = label;
    }
    return new InMemoryDataset(name, images, labels, [size, size, 1], 2, ['horizontal', 'vertical']);
  };
  return {
    train: make(options.train ?? 256, 'stripes'),
    val: make(options.val ?? 64, 'stripes-val'),
    source: `stripes (synthetic, ${size}x${size})`,
  };
}

/** A metrics sink: OUT/metrics.csv, a header and one appended line per epoch. */
export class CsvMetricsSink {
  file = '';
  async open(out) {
    this.file = join(out, 'metrics.csv');
    await mkdir(out, { recursive: true });
    if (!existsSync(this.file)) await appendFile(this.file, `${METRIC_KEYS.join(',')}\n`);
  }
  async write(metrics) {
    await appendFile(this.file, `${METRIC_KEYS.map((k) => metrics[k]).join(',')}\n`);
  }
  async close() {}
}

export default definePlugin({
  name: 'acme',
  description: 'Lion optimizer, a stripes dataset format and a CSV metrics sink, through DI',
  schema: { type: 'object', additionalProperties: false, properties: { csv: { type: 'boolean', default: true } } },
  apply() {},
  modules: (options) => [
    new ContainerModule(({ bind, rebind, onActivation }) => {
      // Replace a service: the optimizer registry (rebind: the last module wins, and a second package doing it is an error).
      rebind(TOKENS.Optimizers).toConstantValue(new AcmeOptimizers());
      // Extend a service: register a dataset format on the registry when the container creates it.
      onActivation(TOKENS.Datasets, (_context, registry) => {
        registry.register('stripes', (_arg, o) => stripes(o), 'synthetic horizontal/vertical stripes, 16x16 (acme)');
        return registry;
      });
      // Add to a multi-bound service: a second metrics sink next to the JSONL one.
      if (options.csv) bind(TOKENS.MetricsSink).to(CsvMetricsSink);
    }),
  ],
});
