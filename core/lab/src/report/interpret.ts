/**
 * The numbers behind report.html's interpretation (fastai's ClassificationInterpretation): per-sample losses on the
 * validation set, the most-confused pairs, and Grad-CAM (Selvaraju et al. 2017) on a functional LayersModel.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { type Batch, type Dataset, defaultInference, type InferenceForward, loadBatches, toBatch, TricksError } from '@tricks/core';

type GraphNode = LayersModel['nodesByDepth'][string][number];

/** The model's nodes in the order LayersModel.apply runs them (depth, deepest first), without the input layer. */
function graphNodes(model: LayersModel): GraphNode[] {
  return Object.keys(model.nodesByDepth)
    .map(Number)
    .sort((a, b) => b - a)
    .flatMap((d) => model.nodesByDepth[d])
    .filter((n) => n.outboundLayer.getClassName() !== 'InputLayer');
}

/** A node Grad-CAM reads: its layer's name and output shape (NHWC, batch null). */
export interface CamLayer {
  name: string;
  shape: number[];
  node: GraphNode;
}

/**
 * The layer Grad-CAM reads: `name`, or the last layer (in execution order) with a 4-D output larger than 1x1, the
 * last convolutional stage before global pooling (a 1x1 map, as ResNet-18 has at 32 px, shows nothing).
 */
export function camLayer(model: LayersModel, name?: string): CamLayer | undefined {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return undefined;
  const maps = graphNodes(model).filter((n) => n.outputTensors.length === 1 && n.outputTensors[0].shape.length === 4);
  const of = (n: GraphNode) => ({ name: n.outboundLayer.name, shape: n.outputTensors[0].shape as number[], node: n });
  if (name) {
    const n = maps.find((m) => m.outboundLayer.name === name);
    if (!n)
      throw new TricksError(
        `report.interpret.layer: "${name}" is not a layer of ${model.name} with a 4-D (NHWC) output`,
        `the last ones: ${maps
          .slice(-5)
          .map((m) => m.outboundLayer.name)
          .join(', ')}`,
      );
    return of(n);
  }
  const n = maps.filter((m) => (m.outputTensors[0].shape[1] ?? 2) * (m.outputTensors[0].shape[2] ?? 2) > 1).at(-1);
  return n && of(n);
}

/**
 * Runs the model's graph eagerly, node by node as LayersModel.apply does (inference: no training flag), adding
 * `delta` to the output of `at`: its output and the logits. Skip connections and multi-input layers are just nodes.
 */
export function runGraph(model: LayersModel, x: tf.Tensor, at: CamLayer, delta?: tf.Tensor): { features: tf.Tensor; logits: tf.Tensor } {
  const values = new Map<number, tf.Tensor>([[model.inputs[0].id, x]]);
  let features: tf.Tensor | undefined;
  for (const node of graphNodes(model)) {
    const ins = node.inputTensors.map((t) => values.get(t.id));
    if (ins.some((t) => !t)) throw new Error(`interpret: layer ${node.outboundLayer.name} has an input not computed before it`);
    const out = node.outboundLayer.call(ins.length === 1 ? ins[0]! : (ins as tf.Tensor[]), { ...(node.callArgs ?? {}) });
    const outs = Array.isArray(out) ? out : [out];
    if (node === at.node) {
      if (delta) outs[0] = tf.add(outs[0], delta);
      features = outs[0];
    }
    node.outputTensors.forEach((t, i) => values.set(t.id, outs[i]));
  }
  return { features: features!, logits: values.get(model.outputs[0].id)! };
}

/**
 * Grad-CAM of `classes[i]` for image i: alpha_k = mean over (i, j) of d y^c / d A^k_ij (y^c the pre-softmax score,
 * A the output of `at`), cam = ReLU(sum_k alpha_k A^k); `up` is cam resized to `size` bilinearly (half-pixel
 * centres, as torch's F.interpolate(align_corners=False)). One forward for A, one forward and backward for the grads.
 */
export function gradCam(
  model: LayersModel,
  x: tf.Tensor4D,
  classes: number[],
  at: CamLayer,
  size: [number, number] = [x.shape[1], x.shape[2]],
): { cam: tf.Tensor3D; up: tf.Tensor3D } {
  return tf.tidy(() => {
    const { features, logits } = runGraph(model, x, at);
    const mask = tf.cast(tf.oneHot(tf.tensor1d(classes, 'int32'), logits.shape[1]!), 'float32');
    const score = (d: tf.Tensor) => tf.sum(tf.mul(runGraph(model, x, at, d).logits, mask)) as tf.Scalar;
    const grads = tf.grad(score)(tf.zerosLike(features));
    const cam = tf.relu(tf.sum(tf.mul(tf.mean(grads, [1, 2], true), features), -1)) as tf.Tensor3D;
    const up = tf.squeeze(tf.image.resizeBilinear(tf.expandDims(cam, -1) as tf.Tensor4D, size, false, true), [3]) as tf.Tensor3D;
    return { cam, up };
  });
}

/** Per-sample results of one pass: cross-entropy of the true class, the top-1 class and its softmax probability. */
export interface SampleResults {
  indices: Int32Array;
  labels: Int32Array;
  loss: Float32Array;
  pred: Int32Array;
  prob: Float32Array;
  /** confusion[true][predicted] of these samples. */
  confusion: number[][];
}

/**
 * One pass over `indices` of `data` as evaluation scores it: `transform` the evalBatch pipeline, `predict` the
 * TOKENS.Inference forward (logits or log-probabilities: tta's merged views).
 */
export async function sampleResults(
  model: LayersModel,
  data: Dataset,
  indices: Int32Array,
  batchSize: number,
  transform: (b: Batch) => Batch = (b) => b,
  predict: InferenceForward = defaultInference,
): Promise<SampleResults> {
  const n = indices.length,
    k = data.numClasses;
  const r: SampleResults = {
    indices,
    labels: new Int32Array(n),
    loss: new Float32Array(n),
    pred: new Int32Array(n),
    prob: new Float32Array(n),
    confusion: Array.from({ length: k }, () => new Array<number>(k).fill(0)),
  };
  let at = 0;
  for await (const raw of loadBatches(data, indices, batchSize)) {
    const m = raw.labels.length;
    const x = tf.tidy(() => transform(toBatch(raw, data.shape, k)).x);
    const logits = await predict(model, x as tf.Tensor4D);
    const outs = tf.tidy(() => {
      const logp = tf.logSoftmax(logits);
      const y = tf.cast(tf.oneHot(tf.tensor1d(raw.labels, 'int32'), k), 'float32');
      return [tf.neg(tf.sum(tf.mul(logp, y), 1)), tf.argMax(logits, 1), tf.exp(tf.max(logp, 1))];
    });
    tf.dispose([x, logits]);
    const [loss, pred, prob] = await Promise.all(outs.map((t) => t.data()));
    tf.dispose(outs);
    r.labels.set(raw.labels, at);
    r.loss.set(loss as Float32Array, at);
    r.pred.set(pred as Int32Array, at);
    r.prob.set(prob as Float32Array, at);
    for (let i = 0; i < m; i++) r.confusion[raw.labels[i]][pred[i]]++;
    at += m;
  }
  return r;
}

/** Positions (into SampleResults) of the k largest losses, largest first (ties: the earlier sample first). */
export function topLosses(loss: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: loss.length }, (_, i) => i)
    .sort((a, b) => loss[b] - loss[a] || a - b)
    .slice(0, k);
}

/**
 * fastai's most_confused(min_val): the off-diagonal cells of confusion[actual][predicted] with count >= minVal,
 * largest first (ties in row-major order, as fastai's stable sort of np.where's order).
 */
export function mostConfused(
  confusion: number[][],
  classNames: string[],
  minVal = 1,
): { actual: string; predicted: string; count: number }[] {
  const name = (i: number) => classNames[i] ?? String(i);
  return confusion
    .flatMap((row, i) => row.map((count, j) => ({ actual: name(i), predicted: name(j), count, off: i !== j })))
    .filter((c) => c.off && c.count >= minVal)
    .sort((a, b) => b.count - a.count)
    .map(({ actual, predicted, count }) => ({ actual, predicted, count }));
}
