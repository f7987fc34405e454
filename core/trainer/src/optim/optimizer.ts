import * as tf from '@tensorflow/tfjs-core';
import { TricksError } from '../hooks/errors.js';
import { clipByGlobalNorm } from './clip.js';

export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

export interface OptimizerOptions {
  lr: number;
  weightDecay?: number;
  /** Clip the gradients to this global L2 norm before the update (torch.nn.utils.clip_grad_norm_). */
  clipNorm?: number;
  [key: string]: unknown;
}

/**
 * Base of the project's optimizers: a tfjs Optimizer (so it serializes its slots with getWeights /
 * setWeights), with a learning rate the schedule sets every step, a weight decay, and a filter that
 * says which variables are decayed (the no-bias-decay trick sets it). Slots are keyed by variable
 * name, not position, so a checkpoint restores them whatever order the gradients come in.
 */
export abstract class TricksOptimizer extends tf.Optimizer {
  learningRate: number;
  weightDecay: number;
  /** Global-norm gradient clipping applied in applyGradients (optimizer.clipNorm); undefined = off. */
  clipNorm: number | undefined;
  /** Returns false for variables that get no weight decay. */
  decayFilter: (variableName: string) => boolean = () => true;
  /** The factor on the lr of each variable (PyTorch's param groups: discriminative lrs, layer decay); 1 by default. */
  lrScale: (variableName: string) => number = () => 1;
  protected slots = new Map<string, tf.Variable>();

  constructor(opts: OptimizerOptions) {
    super();
    check('lr', opts.lr, (v) => v > 0, 'a positive number');
    check('weightDecay', opts.weightDecay ?? 0, (v) => v >= 0, 'a number >= 0');
    if (opts.clipNorm !== undefined) check('clipNorm', opts.clipNorm, (v) => v > 0, 'a positive number');
    this.learningRate = opts.lr;
    this.weightDecay = opts.weightDecay ?? 0;
    this.clipNorm = opts.clipNorm;
  }

  setLearningRate(lr: number): void {
    if (!Number.isFinite(lr) || lr < 0)
      throw new TricksError(`learning rate must be a finite number >= 0, got ${lr}`, 'check optimizer.lr and the schedule options');
    this.learningRate = lr;
  }

  protected slot(varName: string, slotName: string, like: tf.Tensor): tf.Variable {
    const key = `${varName}/${slotName}`;
    let v = this.slots.get(key);
    if (!v) {
      v = tf.tidy(() => tf.variable(tf.zerosLike(like), false, undefined, like.dtype));
      this.slots.set(key, v);
    }
    return v;
  }

  /** Update one variable in place; runs inside a tidy. */
  protected abstract update(name: string, value: tf.Variable, grad: tf.Tensor, decay: number): void;

  applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    let pairs = Array.isArray(variableGradients)
      ? variableGradients.map((g) => [g.name, g.tensor] as const)
      : Object.entries(variableGradients);
    let clipped: tf.NamedTensorMap | undefined;
    if (this.clipNorm !== undefined) {
      clipped = clipByGlobalNorm(Object.fromEntries(pairs.filter(([, g]) => g != null)), this.clipNorm);
      pairs = Object.entries(clipped);
    }
    for (const [name, grad] of pairs) {
      if (grad == null) continue;
      const value = tf.engine().registeredVariables[name];
      if (!value) throw new Error(`optimizer: no variable named ${name}`);
      const decay = this.weightDecay && this.decayFilter(name) ? this.weightDecay : 0;
      const [lr, scale] = [this.learningRate, this.lrScale(name)];
      this.learningRate = lr * scale;
      tf.tidy(() => this.update(name, value, grad, decay));
      this.learningRate = lr;
    }
    if (clipped) tf.dispose(Object.values(clipped));
    this.incrementIterations();
  }

  dispose(): void {
    for (const v of this.slots.values()) v.dispose();
    this.slots.clear();
    this.iterTensor?.dispose();
    this.iterTensor = undefined;
  }

  private iterTensor: tf.Tensor | undefined;

  /**
   * The iteration count and the slots. The returned tensors belong to the optimizer (the caller must not
   * dispose them): the iteration scalar is replaced on the next call, so repeated checkpoints leak nothing.
   */
  async getWeights(): Promise<NamedTensor[]> {
    this.iterTensor?.dispose();
    const iter = await this.saveIterations();
    this.iterTensor = iter.tensor;
    return [iter, ...[...this.slots].map(([name, tensor]) => ({ name, tensor }))];
  }

  async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const rest = await this.extractIterations(weightValues);
    this.dispose();
    for (const { name, tensor } of rest) this.slots.set(name, tf.variable(tensor, false, undefined, tensor.dtype));
  }
}

/** Throws a TricksError naming `optimizer.<name>` when a numeric option is out of range. */
function check(name: string, value: unknown, ok: (v: number) => boolean, what: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
    throw new TricksError(`option "optimizer.${name}" must be ${what}, got ${JSON.stringify(value)}`);
  }
}

/**
 * A backend may register these kernels to run SGD.update and Adam.update in one pass (the wasm
 * backend does: backends/wasm/optimizer.ts), with the same f32 operations in the same order as the
 * unfused updates below. SGD: inputs value, grad, buf (the momentum buffer; ignored when momentum
 * is 0), outputs [value'] or, with momentum, [value', buf']. Adam: inputs value, grad, m, v,
 * outputs [value', m', v']. All float32 of one shape.
 */
export const SGD_STEP_KERNEL = 'TricksSgdStep';
export const ADAM_STEP_KERNEL = 'TricksAdamStep';
export interface SgdStepAttrs {
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
}
/** l2: coupled decay; wMul: 1 - lr*decay when decoupled; step: lr / (1 - beta1^t); sqrtBc2: sqrt(1 - beta2^t). */
export interface AdamStepAttrs {
  l2: number;
  beta1: number;
  beta2: number;
  eps: number;
  sqrtBc2: number;
  decoupled: boolean;
  wMul: number;
  step: number;
}

/** True when the backend has the one-pass kernel and the update is on float32 tensors of one shape. */
function fusable(kernel: string, value: tf.Tensor, grad: tf.Tensor): boolean {
  return (
    value.dtype === 'float32' &&
    grad.dtype === 'float32' &&
    tf.util.arraysEqual(value.shape, grad.shape) &&
    tf.getKernel(kernel, tf.getBackend()) !== undefined
  );
}

/**
 * SGD as PyTorch applies it: g = grad + wd * w (coupled decay); buf = m * buf + g;
 * step = nesterov ? g + m * buf : buf; w -= lr * step.
 */
export class SGD extends TricksOptimizer {
  static get className() {
    return 'TricksSGD';
  }
  readonly momentum: number;
  readonly nesterov: boolean;

  constructor(opts: OptimizerOptions & { momentum?: number; nesterov?: boolean }) {
    super(opts);
    this.momentum = opts.momentum ?? 0;
    this.nesterov = opts.nesterov ?? false;
    check('momentum', this.momentum, (v) => v >= 0 && v < 1, 'in [0, 1)');
    if (this.nesterov && !(this.momentum > 0)) {
      throw new TricksError(
        'option "optimizer.nesterov" needs a momentum > 0 (as in PyTorch)',
        'set optimizer.momentum, e.g. 0.9, or nesterov: false',
      );
    }
  }

  protected update(name: string, value: tf.Variable, grad: tf.Tensor, decay: number): void {
    if (fusable(SGD_STEP_KERNEL, value, grad)) {
      const buf = this.momentum ? this.slot(name, 'momentum', value) : grad;
      const attrs: SgdStepAttrs = { lr: this.learningRate, momentum: this.momentum, weightDecay: decay, nesterov: this.nesterov };
      const [w, b] = tf
        .engine()
        .runKernel(SGD_STEP_KERNEL, { value, grad, buf }, attrs as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
      if (b) (buf as tf.Variable).assign(b);
      value.assign(w!);
      return;
    }
    let g = decay ? tf.add(grad, tf.mul(value, decay)) : grad;
    if (this.momentum) {
      const buf = this.slot(name, 'momentum', value);
      // PyTorch initializes the buffer with the first gradient; with a zero buffer m*0 + g is the same.
      const nb = tf.add(tf.mul(buf, this.momentum), g);
      buf.assign(nb);
      g = this.nesterov ? tf.add(g, tf.mul(nb, this.momentum)) : nb;
    }
    value.assign(tf.sub(value, tf.mul(g, this.learningRate)));
  }

  getConfig() {
    return { lr: this.learningRate, momentum: this.momentum, nesterov: this.nesterov, weightDecay: this.weightDecay };
  }
}

/** Adam (Kingma and Ba), with L2 weight decay added to the gradient as PyTorch's Adam does. */
export class Adam extends TricksOptimizer {
  static get className() {
    return 'TricksAdam';
  }
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** Decoupled decay (AdamW, Loshchilov and Hutter) instead of L2 in the gradient. */
  readonly decoupled: boolean;

  constructor(opts: OptimizerOptions & { beta1?: number; beta2?: number; eps?: number; decoupled?: boolean }) {
    super(opts);
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.decoupled = opts.decoupled ?? false;
    check('beta1', this.beta1, (v) => v >= 0 && v < 1, 'in [0, 1)');
    check('beta2', this.beta2, (v) => v >= 0 && v < 1, 'in [0, 1)');
    check('eps', this.eps, (v) => v > 0, 'a positive number');
  }

  protected update(name: string, value: tf.Variable, grad: tf.Tensor, decay: number): void {
    const t = this.iterations + 1;
    const m = this.slot(name, 'm', value);
    const v = this.slot(name, 'v', value);
    const bc1 = 1 - Math.pow(this.beta1, t);
    const bc2 = 1 - Math.pow(this.beta2, t);
    if (fusable(ADAM_STEP_KERNEL, value, grad)) {
      const attrs: AdamStepAttrs = {
        l2: decay && !this.decoupled ? decay : 0,
        beta1: this.beta1,
        beta2: this.beta2,
        eps: this.eps,
        sqrtBc2: Math.sqrt(bc2),
        decoupled: Boolean(decay && this.decoupled),
        wMul: 1 - this.learningRate * decay,
        step: this.learningRate / bc1,
      };
      const [w, nm, nv] = tf
        .engine()
        .runKernel(ADAM_STEP_KERNEL, { value, grad, m, v }, attrs as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
      m.assign(nm!);
      v.assign(nv!);
      value.assign(w!);
      return;
    }
    let g = grad;
    if (decay && !this.decoupled) g = tf.add(g, tf.mul(value, decay));
    const nm = tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1));
    const nv = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
    m.assign(nm);
    v.assign(nv);
    const denom = tf.add(tf.div(tf.sqrt(nv), Math.sqrt(bc2)), this.eps);
    let w: tf.Tensor = value;
    if (decay && this.decoupled) w = tf.mul(w, 1 - this.learningRate * decay);
    value.assign(tf.sub(w, tf.mul(tf.div(nm, denom), this.learningRate / bc1)));
  }

  getConfig() {
    return {
      lr: this.learningRate,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      weightDecay: this.weightDecay,
      decoupled: this.decoupled,
    };
  }
}

/**
 * AdamW (Loshchilov and Hutter 2019) as torch.optim.AdamW: w <- w * (1 - lr * wd) before the Adam step,
 * with the lr of the current step (so a schedule scales the decay too). Default weight decay 0.01.
 */
export class AdamW extends Adam {
  static override get className() {
    return 'TricksAdamW';
  }

  constructor(opts: OptimizerOptions & { beta1?: number; beta2?: number; eps?: number }) {
    super({ ...opts, weightDecay: opts.weightDecay ?? 0.01, decoupled: true });
  }
}

tf.serialization.registerClass(SGD as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);
tf.serialization.registerClass(Adam as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);
tf.serialization.registerClass(AdamW as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);
