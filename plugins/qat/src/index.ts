import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { activationRange, fakeQuantize, weightRange } from '@tricks/helper-quant';
import { bnScale, foldablePairs, quantizeModel, saveTfjs, scaleKernel, weightOf } from '@tricks/export';
import { definePlugin, STAGE_COMPRESS, type Artifact, type PluginState, type TrainContext } from '@tricks/core';
import { fakeQuantizeWeight, MinMaxObserver } from './quant.js';

export { fakeQuantizeWeight, MinMaxObserver } from './quant.js';

export const PLUGIN_NAME = 'qat';
/** Conv, depthwise conv and dense layers are quantized (kernel and input); the rest run in float. */
export const QAT_LAYERS = new Set(['Conv2D', 'DepthwiseConv2D', 'Dense']);

export interface QatOptions {
  /** Fake quantization (and observation) starts after this many finished epochs. */
  startEpoch: number;
  /** The activation observers stop moving after this many finished epochs (null: never). */
  freezeObserversEpoch: number | null;
  /** BatchNorm uses its moving statistics (no more batch statistics, no updates) after this many epochs (null: never). */
  freezeBnEpoch: number | null;
  /** Bit width: weights signed symmetric [-2^(b-1), 2^(b-1)-1], activations unsigned [0, 2^b-1]. */
  bits: number;
  /** Weights per output channel (default) or per tensor. */
  perChannel: boolean;
  /** Simulate folding BN into the conv before it (PyTorch's ConvBn2d, TF-MOT): the exported conv is the folded one. */
  foldBn: boolean;
  /** Moving-average constant of the activation observers (PyTorch: 0.01). */
  averagingConstant: number;
}

type Kwargs = Record<string, unknown>;
type Call = (inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs) => tf.Tensor | tf.Tensor[];
const one = (x: tf.Tensor | tf.Tensor[]) => (Array.isArray(x) ? x[0] : x);

interface Patched {
  layer: tfl.layers.Layer;
  call: Call;
}

/**
 * The QAT simulation, installed on the layers of a standard LayersModel: each conv/depthwise/dense layer's
 * call fake-quantizes its input (moving-average observer, uint8 affine per tensor) and its kernel (int8
 * symmetric, per channel), with BN folding simulated as PyTorch's ConvBn2d does: the kernel is scaled by
 * gamma/sqrt(var+eps) before quantization and the output divided by it again, so that the BN that follows
 * still normalizes (batch statistics until freezeBnEpoch) and, in inference, the pair is exactly the folded,
 * quantized conv the export writes. The model's classes, config and weights are untouched.
 */
export class QatSimulation {
  readonly observers = new Map<string, MinMaxObserver>();
  readonly pairs: { conv: string; bn: string }[];
  private readonly patched: Patched[] = [];

  constructor(
    readonly model: LayersModel,
    readonly o: QatOptions,
    private readonly epoch: () => number,
  ) {
    this.pairs = o.foldBn ? foldablePairs(model) : [];
    const bnOf = new Map(this.pairs.map((p) => [p.conv, model.getLayer(p.bn)]));
    for (const layer of model.layers) {
      const cls = layer.getClassName();
      if (QAT_LAYERS.has(cls)) {
        const obs = new MinMaxObserver(layer.name, o.averagingConstant);
        this.observers.set(layer.name, obs);
        this.patch(
          layer,
          (orig) => (inputs, kwargs) =>
            this.active ? this.quantizedCall(layer, cls, one(inputs), kwargs, obs, bnOf.get(layer.name)) : orig(inputs, kwargs),
        );
      }
    }
    for (const p of this.pairs) {
      this.patch(model.getLayer(p.bn), (orig) => (inputs, kwargs) => orig(inputs, this.bnFrozen ? { ...kwargs, training: false } : kwargs));
    }
  }

  get active(): boolean {
    return this.epoch() >= this.o.startEpoch;
  }
  get observersFrozen(): boolean {
    return this.o.freezeObserversEpoch !== null && this.epoch() >= this.o.freezeObserversEpoch;
  }
  get bnFrozen(): boolean {
    return this.o.freezeBnEpoch !== null && this.epoch() >= this.o.freezeBnEpoch;
  }

  private patch(layer: tfl.layers.Layer, make: (orig: Call) => Call): void {
    const l = layer as unknown as { call: Call };
    const orig = l.call.bind(layer);
    this.patched.push({ layer, call: l.call });
    l.call = make(orig);
  }

  private quantizedCall(
    layer: tfl.layers.Layer,
    cls: string,
    input: tf.Tensor,
    kwargs: Kwargs,
    obs: MinMaxObserver,
    bn?: tfl.layers.Layer,
  ): tf.Tensor {
    return tf.tidy(() => {
      const cfg = layer.getConfig() as Record<string, unknown>;
      let x = input;
      if (kwargs?.training && !this.observersFrozen) obs.observe(x);
      if (obs.count > 0) {
        const { scale, zeroPoint } = obs.qparams(activationRange(this.o.bits));
        x = fakeQuantize(x, scale, zeroPoint, activationRange(this.o.bits));
      }
      let k = weightOf(layer, cls === 'DepthwiseConv2D' ? 'depthwise_kernel' : 'kernel')!.read();
      let s: tf.Tensor1D | undefined;
      if (bn) {
        const raw = bnScale(bn);
        s = tf.add(raw, tf.sub(1, tf.sign(tf.abs(raw)))) as tf.Tensor1D; // a zero gamma (zero-gamma init): 1, BN zeroes the channel anyway
        k = scaleKernel(k, cls, s);
      }
      const kq = fakeQuantizeWeight(k, cls, this.o.perChannel, weightRange(this.o.bits));
      const pair = (v: unknown) => (Array.isArray(v) ? (v as [number, number]) : ([v, v] as [number, number]));
      let y: tf.Tensor;
      if (cls === 'Dense') {
        const shape = x.shape;
        y = tf.matMul(tf.reshape(x, [-1, shape.at(-1)!]) as tf.Tensor2D, kq as tf.Tensor2D);
        if (shape.length > 2) y = tf.reshape(y, [...shape.slice(0, -1), kq.shape[1] as number]);
      } else {
        const args = [pair(cfg.strides), cfg.padding as 'same' | 'valid', 'NHWC', pair(cfg.dilationRate)] as const;
        y =
          cls === 'Conv2D'
            ? tf.conv2d(x as tf.Tensor4D, kq as tf.Tensor4D, ...args)
            : tf.depthwiseConv2d(x as tf.Tensor4D, kq as tf.Tensor4D, ...args);
      }
      if (s) y = tf.div(y, s);
      const bias = weightOf(layer, 'bias');
      if (bias) y = tf.add(y, bias.read());
      const act = (layer as unknown as { activation?: { apply(t: tf.Tensor): tf.Tensor } }).activation;
      return act ? act.apply(y) : y;
    });
  }

  /** Input ranges of the observed layers, for the export grid. */
  inputRanges(): Record<string, { min: number; max: number }> {
    const r: Record<string, { min: number; max: number }> = {};
    for (const [name, o] of this.observers) if (o.count > 0) r[name] = { min: o.min.dataSync()[0], max: o.max.dataSync()[0] };
    return r;
  }

  /** Puts the original calls back and frees the observers. */
  dispose(): void {
    for (const p of this.patched) (p.layer as unknown as { call: Call }).call = p.call;
    this.patched.length = 0;
    for (const o of this.observers.values()) o.dispose();
  }
}

export default definePlugin<QatOptions>({
  name: PLUGIN_NAME,
  description:
    'quantization-aware training: int8 fake quantization (STE), per-channel weights, observed uint8 activations, simulated BN folding; int8 export on the same grid',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      startEpoch: { type: 'integer', minimum: 0, default: 0 },
      freezeObserversEpoch: { type: ['integer', 'null'], minimum: 0, default: null },
      freezeBnEpoch: { type: ['integer', 'null'], minimum: 0, default: null },
      bits: { type: 'integer', minimum: 2, maximum: 8, default: 8 },
      perChannel: { type: 'boolean', default: true },
      foldBn: { type: 'boolean', default: true },
      averagingConstant: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.01 },
    },
  },
  apply(api, options) {
    let sim: QatSimulation | undefined;
    let ctxRef: TrainContext | undefined;
    api.hooks.model.tap({ name: PLUGIN_NAME, stage: STAGE_COMPRESS }, (model, ctx) => {
      ctxRef = ctx;
      sim = new QatSimulation(model, options, () => ctxRef?.epoch ?? 0);
      return model;
    });
    api.hooks.epoch.tapPromise({ name: PLUGIN_NAME }, async (ctx, metrics) => {
      if (!sim?.active) return;
      metrics.qat = 1;
      if (ctx.epoch === options.startEpoch)
        ctx.logger.info(
          `qat: fake quantization on (${options.bits}-bit, ${options.perChannel ? 'per-channel' : 'per-tensor'} weights, ${sim.pairs.length} BN folds simulated)`,
        );
    });
    // After prune (STAGE_COMPRESS), before the formats are written (STAGE_REPORT): fold BN and put the kernels
    // on the grid QAT trained with, on whatever model the earlier taps produced (a pruned one keeps layer names).
    api.hooks.export.tapPromise({ name: PLUGIN_NAME, stage: STAGE_COMPRESS + 10 }, async (artifact: Artifact, ctx: TrainContext) => {
      if (!sim) return artifact;
      const inputRanges = sim.inputRanges();
      if (!Object.keys(inputRanges).length) {
        ctx.logger.warn(`qat: no quantization was simulated (startEpoch ${options.startEpoch} >= epochs run); the float model is exported`);
        return artifact;
      }
      const { model, quantization, pairs } = await quantizeModel(artifact.model, {
        bits: options.bits,
        perChannel: options.perChannel,
        inputRanges,
        pairs: options.foldBn ? foldablePairs(artifact.model) : [],
      });
      const meta = {
        ...((artifact.model.getUserDefinedMetadata() as object) ?? {}),
        tricks_quantization: {
          scheme: 'qat',
          bits: options.bits,
          perChannel: options.perChannel,
          foldedBn: pairs.length,
          layers: quantization,
        },
      };
      model.setUserDefinedMetadata(meta);
      const dir = join(ctx.out, 'model-qat');
      const files = await saveTfjs(model, dir, 'tfjs');
      const simulated = ctx.metrics.at(-1)?.val_top1;
      ctx.logger.info(
        `qat: folded ${pairs.length} BN layers, ${Object.keys(quantization).length} layers on the int8 grid: ${dir} (simulated val_top1 ${simulated?.toFixed(4)})`,
      );
      return {
        ...artifact,
        format: 'tfjs',
        dir,
        files,
        model,
        quantization,
        report: {
          ...artifact.report,
          qat: { simulated_top1: simulated, layers: Object.keys(quantization).length, folded_bn: pairs.length, bits: options.bits },
        },
      };
    });
    // every exit (an error, a NaN stop, a signal too): put the layers' own calls back, free the observers
    api.hooks.teardown.tapPromise({ name: PLUGIN_NAME }, async () => {
      sim?.dispose();
      sim = undefined;
    });
    // the observers resume with the run
    const state: PluginState = {
      save: () => ({
        json: Object.fromEntries([...(sim?.observers ?? [])].map(([k, o]) => [k, o.count])),
        tensors: Object.fromEntries(
          [...(sim?.observers ?? [])].flatMap(([k, o]) => [
            [`${k}/min`, o.min],
            [`${k}/max`, o.max],
          ]),
        ),
      }),
      load: (state) => {
        const counts = (state.json ?? {}) as Record<string, number>;
        for (const [k, o] of sim?.observers ?? []) {
          const min = state.tensors?.[`${k}/min`];
          const max = state.tensors?.[`${k}/max`];
          if (!min || !max) throw new Error(`qat: the checkpoint has no observer for layer ${k}`);
          o.min.assign(min);
          o.max.assign(max);
          o.count = counts[k] ?? 0;
        }
      },
    };
    return { state };
  },
});
