import { createHash } from 'node:crypto';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { inject, injectable, multiInject } from 'inversify';
import { SubsetDataset, type Dataset } from '../data/dataset.js';
import { loadBatches, numBatches, type LoadedBatch, type Sampler } from '../data/loader.js';
import type { DatasetRegistry } from '../data/registry.js';
import { TOKENS } from '../di/tokens.js';
import { CancelBatch, NonFiniteLoss, StopTraining, TricksError } from '../hooks/errors.js';
import {
  createHooks,
  tapOnly,
  type Artifact,
  type Batch,
  type DecodePlan,
  type EpochMetrics,
  type Hooks,
  type PluginHooks,
  type RunResult,
} from '../hooks/hooks.js';
import type { GradientFunction, InferenceForward, TrainingForward } from '../contract.js';
import type { Logger } from '../io/logger.js';
import { lossTerms, type LossFunction } from '../losses/cross-entropy.js';
import { isOutOfMemory, microBatchRanges, outOfMemory, sliceBatch } from './memory.js';
import type { ModelRegistry } from '../models/registry.js';
import type { OptimizerRegistry } from '../optim/registry.js';
import type { LrSchedule, ScheduleRegistry } from '../optim/schedule.js';
import type { PluginApi, PluginDefinition } from '../plugin/define.js';
import type { ResolvedConfig, ResolvedPlugin } from '../plugin/config.js';
import type { BackendService } from '../backends/select.js';
import { Rng } from '../util/rng.js';
import { withSeededMathRandom } from '../util/seeded-random.js';
import { CHECKPOINT_FORMAT, type Checkpointer, type TrainerState } from './checkpoint.js';
import type { EvalResult, PluginState, TrainContext } from './context.js';
import type { Exporter } from './exporter.js';
import { evaluateModel, toBatch } from './evaluate.js';
import type { MetricsSink } from './sinks.js';
import { coreBuiltins, type BuiltinAccess } from './builtins.js';

/** Thrown when SIGTERM/SIGINT stopped the run after a checkpoint was written. */
export class Interrupted extends TricksError {
  constructor(
    readonly signal: string,
    dir: string,
  ) {
    super(
      `${signal}: stopped after the current step; checkpoint written to ${dir}`,
      `continue with: tricks train --resume ${join(dir, '..')}`,
    );
    this.name = 'Interrupted';
  }
}

export interface RunOptions {
  /** Continue from OUT/checkpoint of a previous run. */
  resume?: boolean;
  /** Install SIGTERM/SIGINT handlers that checkpoint and stop (the CLI does). */
  handleSignals?: boolean;
  /** Replace a previous run in OUT (the run-folder guard of @tricks/checkpoint refuses one otherwise). */
  overwrite?: boolean;
  /** Stops the run as a signal does (after the step, with a checkpoint) when it aborts; its reason names the stop. */
  signal?: AbortSignal;
}

export const hashConfig = (c: ResolvedConfig) => {
  const { out: _o, ...rest } = c;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 16);
};

/** A tap of an async hook as a promise tap; its result goes through `done`, its error through `fail` (which rethrows what it does not handle). */
function wrapTap<T extends { type: string; fn: unknown }>(tap: T, done?: (r: unknown) => unknown, fail?: (e: unknown) => unknown): T {
  const fn = tap.fn as (...a: unknown[]) => unknown;
  const call = (a: unknown[]) =>
    tap.type === 'async' ? new Promise((res, rej) => fn(...a, (e: unknown, r: unknown) => (e ? rej(e) : res(r)))) : fn(...a);
  return { ...tap, type: 'promise', fn: (...a: unknown[]) => new Promise((r) => r(call(a))).then(done, fail) };
}

/**
 * The training loop. Services come from the container; plugins tap `hooks`. One step:
 * batch hook -> model.apply(training) -> loss hook -> gradients -> host-side finite check ->
 * optimizer update -> step hook, all in one tf.tidy.
 */
@injectable()
export class Trainer {
  /** The real hooks: the trainer calls them (tests may intercept them); plugins get `pluginHooks`. */
  readonly hooks: Hooks = createHooks();
  /** Tap-only facades of `hooks`, for api.hooks and ctx.hooks. */
  readonly pluginHooks: PluginHooks = tapOnly(this.hooks);
  private readonly pluginStates = new Map<string, PluginState>();
  private interrupt: string | undefined;
  private saveState: ((part?: TrainerState['partial']) => Promise<void>) | undefined;
  /** The reason of a StopTraining thrown by an epoch tap during the current epoch hook call. */
  private epochStop: string | undefined;
  /** The current epoch's DecodePlan (makeBatch applies its pixel map). */
  private plan: DecodePlan = {};
  private readonly exportedModels = new Set<LayersModel>();
  ctx!: TrainContext;

  constructor(
    @inject(TOKENS.Config) readonly config: ResolvedConfig,
    @inject(TOKENS.Backend) private readonly backend: BackendService,
    @inject(TOKENS.Models) readonly models: ModelRegistry,
    @inject(TOKENS.Datasets) readonly datasets: DatasetRegistry,
    @inject(TOKENS.Optimizers) private readonly optimizers: OptimizerRegistry,
    @inject(TOKENS.Schedules) private readonly schedules: ScheduleRegistry,
    @inject(TOKENS.Loss) private readonly loss: LossFunction,
    @inject(TOKENS.Sampler) private readonly sampler: Sampler,
    @inject(TOKENS.Logger) readonly logger: Logger,
    @multiInject(TOKENS.MetricsSink) private readonly sinks: MetricsSink[],
    @inject(TOKENS.Checkpointer) private readonly checkpointer: Checkpointer,
    @inject(TOKENS.Exporter) private readonly exporter: Exporter,
    @inject(TOKENS.Rng) private readonly makeRng: (seed: number) => Rng,
    @inject(TOKENS.Gradients) private readonly gradients: GradientFunction,
    @inject(TOKENS.Forward) private readonly forward: TrainingForward,
    @inject(TOKENS.Inference) private readonly inference: InferenceForward,
  ) {
    // A StopTraining thrown by an epoch tap ends the run after this epoch: the later taps (the built-in
    // sinks and checkpoint at STAGE_REPORT) still run, so the checkpoint matches the epoch it stopped after.
    this.hooks.epoch.intercept({
      register: (tap) =>
        wrapTap(tap, undefined, (e) => {
          if (!(e instanceof StopTraining)) throw e;
          this.epochStop ??= e.reason;
        }),
    });
    // The run owns every model its export taps produce (a shrunk, a quantized model...): dispose() frees them.
    this.hooks.export.intercept({
      register: (tap) =>
        wrapTap(tap, (r) => {
          const m = (r as Artifact | undefined)?.model;
          if (m) this.exportedModels.add(m);
          return r;
        }),
    });
  }

  /**
   * Applies the built-in plugins (metrics sinks, checkpoints, run.json: core's own, then `builtins`, e.g.
   * progress, export formats, report), then the user's plugins in order; each taps hooks under its own name.
   */
  use(plugins: { definition: PluginDefinition; resolved: ResolvedPlugin }[], builtins: PluginDefinition[] = []): void {
    const access: BuiltinAccess = {
      sinks: this.sinks,
      save: (part) => this.saveState?.(part) ?? Promise.resolve(),
    };
    for (const definition of [...coreBuiltins(access), ...builtins]) this.apply(definition, {}, definition.name);
    for (const { definition, resolved } of plugins) this.apply(definition, resolved.options, resolved.key);
  }

  private registerState(name: string, state: PluginState): void {
    if (this.pluginStates.has(name)) throw new Error(`plugin state "${name}" registered twice`);
    this.pluginStates.set(name, state);
  }

  /** Applies one plugin; the state its apply() returns is saved and restored under its key. */
  private apply(definition: PluginDefinition, options: Record<string, unknown>, key: string): void {
    const api: PluginApi = {
      hooks: this.pluginHooks,
      config: this.config,
      models: this.models,
      datasets: this.datasets,
      registerState: (name, state) => this.registerState(name, state),
    };
    const instance = definition.apply(api, options);
    if (instance?.state) this.registerState(key, instance.state);
  }

  private limit(ds: Dataset, n: number | undefined, seed: number): Dataset {
    if (!n || n >= ds.length) return ds;
    const idx = this.makeRng(seed).permutation(ds.length).slice(0, n).sort();
    return new SubsetDataset(ds, idx, ds.name);
  }

  async run(opts: RunOptions = {}): Promise<RunResult> {
    const cfg = this.config;
    const out = cfg.out;
    const backend = await this.backend.select(cfg.backend);
    const data = await this.datasets.create(cfg.data, cfg.dataOptions);
    const train = this.limit(data.train, cfg.limit.train, 1);
    const val = this.limit(data.val, cfg.limit.val, 2);
    if (cfg.batchSize > train.length) {
      throw new TricksError(
        `batch size ${cfg.batchSize} is larger than the training set (${train.length} items of ${data.source})`,
        `use --batch-size ${train.length} or less`,
      );
    }
    this.logger.info(
      `data: ${data.source}: ${train.length} train, ${val.length} val, ${train.shape.join('x')}, ${train.numClasses} classes`,
    );

    const rng = this.makeRng(cfg.seed);
    const tfRng = this.makeRng((cfg.seed ^ 0x7f4a7c15) >>> 0);
    const spec = { inputShape: train.shape, numClasses: train.numClasses, options: cfg.model.options };
    let model = withSeededMathRandom(tfRng, () => this.models.build(cfg.model.name, spec, this.hooks));
    const optimizer = this.optimizers.create(cfg.optimizer.name, { ...cfg.optimizer });
    const schedule: LrSchedule = this.schedules.create(cfg.schedule);
    const stepsPerEpoch = Math.min(numBatches(train.length, cfg.batchSize, true), cfg.limit.steps ?? Infinity);

    const ctx: TrainContext = (this.ctx = {
      config: cfg,
      hooks: this.pluginHooks,
      epoch: 0,
      step: 0,
      stepInEpoch: 0,
      stepsPerEpoch,
      totalSteps: stepsPerEpoch * cfg.epochs,
      lr: cfg.optimizer.lr,
      baseLr: cfg.optimizer.lr,
      model,
      optimizer,
      rng,
      numClasses: train.numClasses,
      inputShape: train.shape,
      train,
      val,
      metrics: [],
      logger: this.logger,
      backend,
      out,
      evalTransform: (b: Batch) => this.hooks.evalBatch.call(b, ctx),
      evaluate: (m?: LayersModel) => this.evaluate(m ?? ctx.model),
      lastTerms: {},
      microBatches: Math.min(cfg.gradAccum ?? 1, cfg.batchSize),
      evalBatchSize: cfg.evalBatchSize,
      resumed: Boolean(opts.resume),
      overwrite: Boolean(opts.overwrite),
    });
    model = ctx.model = withSeededMathRandom(tfRng, () => this.hooks.model.call(model, ctx));
    this.logger.info(
      `model: ${cfg.model.name}, ${model.countParams().toLocaleString('en-US')} parameters; plugins: ${cfg.plugins.map((p) => p.key).join(', ') || '(none)'}`,
    );
    let startEpoch = 0;
    let partial: TrainerState['partial'];
    const ckptDir = join(out, 'checkpoint');
    this.saveState = async (part?: TrainerState['partial']) => {
      const state: TrainerState = {
        format: CHECKPOINT_FORMAT,
        epoch: ctx.epoch + (part ? 0 : 1),
        stepInEpoch: part ? ctx.stepInEpoch : 0,
        step: ctx.step,
        rng: rng.getState(),
        tfRng: tfRng.getState(),
        configHash: hashConfig(cfg),
        config: cfg,
        metrics: ctx.metrics,
        partial: part,
        plugins: {},
      };
      await this.checkpointer.save(ckptDir, { model: ctx.model, optimizer, state, plugins: this.pluginStates });
    };
    const onSignal = (sig: string) => () => {
      if (this.interrupt) process.exit(sig === 'SIGTERM' ? 143 : 130);
      this.interrupt = sig;
      this.logger.warn(`${sig}: finishing the current step, then writing a checkpoint`);
    };
    const handlers = opts.handleSignals ? { SIGTERM: onSignal('SIGTERM'), SIGINT: onSignal('SIGINT') } : undefined;
    if (handlers) for (const [s, h] of Object.entries(handlers)) process.on(s, h);
    const onAbort = () => (this.interrupt ??= String(opts.signal?.reason ?? 'abort'));
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    let stopped: string | undefined;
    let result: RunResult | undefined;
    let error: unknown;
    if (ctx.microBatches > 1)
      this.logger.info(
        `gradient accumulation: each batch of ${cfg.batchSize} as ${ctx.microBatches} micro-batches of ${Math.ceil(cfg.batchSize / ctx.microBatches)} or less (--grad-accum ${cfg.gradAccum}); batch norm normalizes each micro-batch`,
      );
    try {
      await this.hooks.setup.promise(ctx);
      if (opts.resume) {
        const state = await this.checkpointer.restore(ckptDir, { model: ctx.model, optimizer, plugins: this.pluginStates });
        // What differs from the checkpoint's config (out and the presets, flattened into it, aside); a new length
        // recomputes the schedule over the new total (as timm's --resume with another --epochs): say both lrs.
        const was = state.config as ResolvedConfig,
          show = (c: ResolvedConfig, k: string) => JSON.stringify(c[k as 'seed']);
        const changed = Object.keys(cfg).filter((k) => k !== 'out' && k !== 'presets' && show(was, k) !== show(cfg, k));
        const lr = (n: number) => schedule(ctx.baseLr, { step: state.step, stepsPerEpoch, totalSteps: stepsPerEpoch * n }).toPrecision(3);
        const sched = `; the ${cfg.schedule.name} schedule now spans ${cfg.epochs} epochs: the lr at step ${state.step} is ${lr(cfg.epochs)}`;
        if (changed.length)
          this.logger.info(
            `resumed with ${changed.map((k) => `${k} ${show(was, k)} -> ${show(cfg, k)}`).join(', ')}${was.epochs === cfg.epochs ? '' : `${sched} (${lr(was.epochs)} in the ${was.epochs}-epoch run)`}`,
          );
        startEpoch = state.epoch;
        ctx.step = state.step;
        ctx.stepInEpoch = state.stepInEpoch;
        ctx.metrics = state.metrics as EpochMetrics[];
        rng.setState(state.rng);
        tfRng.setState(state.tfRng);
        partial = state.partial;
        // the lr of the last step taken (the epoch's row reports it even when no step of it is left to run)
        ctx.lr = schedule(ctx.baseLr, { step: Math.max(0, ctx.step - 1), stepsPerEpoch, totalSteps: ctx.totalSteps });
        this.logger.info(`resumed from ${ckptDir}: epoch ${startEpoch + 1}, step ${ctx.stepInEpoch} of it`);
      }
      for (let epoch = startEpoch; epoch < cfg.epochs && !stopped; epoch++) {
        ctx.epoch = epoch;
        const from = epoch === startEpoch ? ctx.stepInEpoch : 0;
        let lossSum = partial?.lossSum ?? 0,
          seen = partial?.seen ?? 0,
          trainSeconds = partial?.seconds ?? 0,
          waitMs = 0,
          skipped = 0;
        partial = undefined;
        const indices = this.sampler.epochIndices(train, epoch, cfg.seed).subarray(0, stepsPerEpoch * cfg.batchSize);
        this.hooks.epochStart.call(ctx);
        const plan = this.decodePlan(train, epoch, ctx);
        const crop = plan.crop ? { crop: plan.crop.draw, pixels: plan.pixels, seed: cfg.seed, epoch } : undefined;
        let t0 = performance.now();
        for await (const raw of loadBatches(train, indices, cfg.batchSize, { from, dropLast: true, crop })) {
          waitMs += raw.waitMs;
          ctx.lr = schedule(ctx.baseLr, { step: ctx.step, stepsPerEpoch, totalSteps: ctx.totalSteps });
          optimizer.setLearningRate(ctx.lr);
          try {
            const l = withSeededMathRandom(tfRng, () => this.trainStep(raw, ctx));
            lossSum += l * raw.labels.length;
            seen += raw.labels.length;
          } catch (e) {
            if (e instanceof CancelBatch) skipped++;
            else if (e instanceof StopTraining) stopped = e.reason;
            else throw e;
          }
          ctx.step++;
          ctx.stepInEpoch++;
          const secs = trainSeconds + (performance.now() - t0) / 1000;
          this.hooks.stepEnd.call(ctx, { loss: seen ? lossSum / seen : NaN, seen, imagesPerSec: seen / secs });
          if (this.interrupt) {
            await this.hooks.interrupt.promise(ctx, { lossSum, seen, seconds: secs });
            throw new Interrupted(this.interrupt, ckptDir);
          }
          if (stopped) break;
        }
        trainSeconds += (performance.now() - t0) / 1000;
        t0 = performance.now();
        const ev = await this.evaluate(ctx.model);
        ctx.lastEval = ev;
        const metrics: EpochMetrics = {
          epoch: epoch + 1,
          train_loss: seen ? lossSum / seen : NaN,
          val_loss: ev.loss,
          val_top1: ev.top1,
          val_top5: ev.top5,
          lr: ctx.lr,
          images_per_sec: seen / trainSeconds,
          seconds: trainSeconds + (performance.now() - t0) / 1000,
          data_wait_seconds: waitMs / 1000,
        };
        if (skipped) metrics.skipped_batches = skipped;
        ctx.metrics.push(metrics);
        // Plugins' taps, then the built-ins' at STAGE_REPORT: the sinks write the row, the checkpoint is saved.
        this.epochStop = undefined;
        await this.hooks.epoch.promise(ctx, metrics);
        if (this.epochStop !== undefined) stopped ??= this.epochStop;
        this.logger.info(
          `epoch ${metrics.epoch}/${cfg.epochs}: train_loss ${metrics.train_loss.toFixed(4)} val_loss ${metrics.val_loss.toFixed(4)} ` +
            `val_top1 ${metrics.val_top1.toFixed(4)} val_top5 ${metrics.val_top5.toFixed(4)} lr ${metrics.lr.toPrecision(3)} ` +
            `${metrics.images_per_sec.toFixed(0)} img/s ${metrics.seconds.toFixed(1)} s (waited ${metrics.data_wait_seconds.toFixed(2)} s for data)`,
        );
        ctx.stepInEpoch = 0;
      }
      const artifact = await this.exporter.export(ctx.model, join(out, 'model'), {
        tricks: {
          classNames: train.classNames,
          inputShape: train.shape,
          ...(data.val.resize ? { resize: data.val.resize } : {}),
          numClasses: train.numClasses,
          model: cfg.model.name,
          plugins: cfg.plugins.map((p) => p.key),
          pluginOptions: cfg.plugins.map((p) => ({ name: p.name, options: p.options })),
        },
      });
      const artifacts: Artifact[] = [artifact];
      const last = await this.hooks.export.promise(artifact, ctx);
      if (last !== artifact) artifacts.push(last);
      const best = ctx.metrics.reduce<EpochMetrics | undefined>((b, m) => (!b || m.val_top1 > b.val_top1 ? m : b), undefined);
      result = { out, epochs: ctx.metrics, best, stopped, artifacts };
      // run.json and report.html are built-in taps, before the plugins' own.
      await this.hooks.done.promise(ctx, result);
    } catch (e) {
      error =
        isOutOfMemory(e) && !(e instanceof TricksError)
          ? outOfMemory(
              `${cfg.model.name} at ${train.shape.slice(0, 2).join('x')} px`,
              cfg.batchSize,
              (e as Error).message,
              ctx.microBatches,
            )
          : e;
    }
    if (handlers) for (const [s, h] of Object.entries(handlers)) process.off(s, h);
    opts.signal?.removeEventListener('abort', onAbort);
    this.saveState = undefined;
    // Every exit: plugins restore what they changed; a teardown error never hides the run's own.
    try {
      await this.hooks.teardown.promise(ctx, { error, result });
    } catch (e) {
      if (error) this.logger.warn(`teardown after a failed run: ${(e as Error).message}`);
      else error = e;
    }
    if (error !== undefined) throw error;
    return result!;
  }

  /**
   * Frees the run's model, optimizer state and every model its export taps produced (the artifacts of
   * RunResult included): a process that runs many trainings calls it after each.
   */
  dispose(): void {
    if (!this.ctx) return;
    this.ctx.optimizer.dispose();
    for (const m of new Set([this.ctx.model, ...this.exportedModels])) {
      try {
        m.dispose();
      } catch {
        // a plugin disposed it already (an intermediate artifact it replaced)
      }
    }
    this.exportedModels.clear();
  }

  /** The epoch's DecodePlan from the decode hook's taps (crop while decoding, normalize folded into the conversion). */
  private decodePlan(train: Dataset, epoch: number, ctx: TrainContext): DecodePlan {
    const taps = (this.hooks.batch as unknown as { taps: { name: string; stage?: number }[] }).taps;
    const batchTaps = taps.map((t) => ({ name: t.name, stage: t.stage ?? 0 }));
    this.plan = this.hooks.decode.call({}, { dataset: train, epoch, batchTaps, ctx });
    return this.plan;
  }

  makeBatch(
    raw: { images: Uint8Array; labels: Int32Array; indices: Int32Array; cropped?: boolean; floats?: Float32Array },
    ctx: TrainContext,
  ): Batch {
    return toBatch(raw, ctx.inputShape, ctx.numClasses, ctx.epoch, ctx.step, this.plan);
  }

  /**
   * One optimizer step. Returns the loss; throws NonFiniteLoss before a bad update reaches the weights. With
   * ctx.microBatches > 1 the batch is computed in row slices whose losses are weighted by their share of the
   * batch, so the summed gradients are the whole batch's mean-loss gradients (up to float rounding).
   */
  private trainStep(raw: LoadedBatch, ctx: TrainContext): number {
    const model = ctx.model;
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    return tf.tidy(() => {
      const batch = this.hooks.batch.call(this.makeBatch(raw, ctx), ctx);
      const size = batch.x.shape[0];
      const ranges = ctx.microBatches > 1 ? microBatchRanges(size, ctx.microBatches) : [[0, size] as [number, number]];
      let grads: tf.NamedTensorMap | undefined;
      let loss = 0;
      const terms: Record<string, number> = {};
      for (const [start, end] of ranges) {
        const share = (end - start) / size;
        let termNames: string[] = [];
        let termValues: tf.Tensor | undefined;
        const next = tf.tidy(() => {
          const part = ranges.length === 1 ? batch : sliceBatch(batch, start, end);
          const { value, grads: g } = this.gradients(() => {
            const logits = this.forward(model, part.x) as tf.Tensor2D;
            const state = this.hooks.loss.call(
              { logits, batch: part, targets: part.y, sampleWeights: part.meta.sampleWeights, terms: {} },
              ctx,
            );
            // the base term, once, from the targets and weights the taps left (the injected Loss)
            const t = lossTerms(state, this.loss);
            termNames = Object.keys(t);
            const values = Object.values(t);
            termValues = tf.keep(tf.stack(values));
            const total = (values.length === 1 ? values[0] : tf.addN(values)) as tf.Scalar;
            return ranges.length === 1 ? total : (tf.mul(total, share) as tf.Scalar);
          }, vars);
          const l = value.dataSync()[0]!;
          if (!Number.isFinite(l)) throw new NonFiniteLoss(ctx.epoch + 1, ctx.stepInEpoch + 1, l / share);
          loss += l;
          if (!grads) return g;
          const sum: tf.NamedTensorMap = { ...grads };
          for (const [k, v] of Object.entries(g)) sum[k] = grads[k] ? tf.add(grads[k], v) : v;
          return sum;
        });
        if (grads) for (const [k, t] of Object.entries(grads)) if (next[k] !== t) t.dispose();
        grads = next;
        const tv = termValues!.dataSync();
        termValues!.dispose();
        termNames.forEach((n, i) => (terms[n] = (terms[n] ?? 0) + tv[i]! * share));
      }
      ctx.lastTerms = terms;
      ctx.optimizer.applyGradients(grads!);
      this.hooks.step.call(ctx);
      return loss;
    });
  }

  /** Loss, top-1, top-5 and the confusion matrix on the validation set (evalBatch hook applied). */
  evaluate(model: LayersModel): Promise<EvalResult> {
    return evaluateModel(model, this.ctx.val, this.ctx.evalBatchSize, (b) => this.hooks.evalBatch.call(b, this.ctx), this.inference);
  }
}
