import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  decodeTensors,
  definePlugin,
  fileHandler,
  loadModel,
  ModelRegistry,
  STAGE_LOSS,
  STAGE_REPORT,
  TricksError,
  weightedMean,
  type Batch,
  type LossState,
  type TrainContext,
} from '@tricks/core';

export const PLUGIN_NAME = 'kd';
/** Loss hook: after label-smoothing and focal-loss, so (1 - alpha) scales whatever supervised term they left. */
export const STAGE = STAGE_LOSS + 10;
/** Supervised terms that (1 - alpha) scales (the base term `ce` through ceScale). */
export const SUPERVISED_TERMS = ['ce', 'focal'];

export interface KdOptions {
  /** A tfjs LayersModel directory (model.json + weights.bin), or a run directory holding model/ or checkpoint/model/. */
  teacher: string;
  /** Build the teacher from this registered model and copy the weights of `teacher` into it, in order. */
  teacherModel?: { name: string; options?: Record<string, unknown> };
  temperature: number;
  /** Weight of the distillation term; the supervised term gets 1 - alpha. */
  alpha: number;
  /** Rows per teacher forward pass; 0 = the whole training batch at once. */
  teacherBatchSize: number;
}

/**
 * The distillation term, alpha * T^2 * KL(softmax(t/T) || softmax(s/T)), KL summed over classes and
 * averaged over the batch (PyTorch's kl_div(..., reduction='batchmean')), weighted when sample weights are
 * given. `teacher` carries no gradient: it is computed outside the gradient tape (batch hook).
 */
export function distillationTerm(
  student: tf.Tensor2D,
  teacher: tf.Tensor2D,
  temperature: number,
  alpha: number,
  sampleWeights?: tf.Tensor1D,
): tf.Scalar {
  return tf.tidy(() => {
    const logPt = tf.logSoftmax(tf.div(teacher, temperature));
    const logPs = tf.logSoftmax(tf.div(student, temperature));
    const kl = tf.sum(tf.mul(tf.exp(logPt), tf.sub(logPt, logPs)), -1);
    return tf.mul(weightedMean(kl, sampleWeights), alpha * temperature * temperature) as tf.Scalar;
  });
}

/** Adds `terms.kd` and multiplies the supervised terms by 1 - alpha: the base term (ceScale) and focal. */
export function kdTerms(state: LossState, teacherLogits: tf.Tensor2D, o: Pick<KdOptions, 'temperature' | 'alpha'>): LossState {
  const terms: LossState['terms'] = {};
  for (const [k, v] of Object.entries(state.terms)) terms[k] = SUPERVISED_TERMS.includes(k) ? tf.mul(v, 1 - o.alpha) : v;
  terms.kd = distillationTerm(state.logits, teacherLogits, o.temperature, o.alpha, state.sampleWeights);
  return { ...state, ceScale: (state.ceScale ?? 1) * (1 - o.alpha), terms };
}

/** The directory with model.json: the path itself, DIR/model (a run's export) or DIR/checkpoint/model. */
export function resolveTeacherDir(dir: string): string {
  const candidates = [dir, join(dir, 'model'), join(dir, 'checkpoint', 'model')].map((d) => resolve(d));
  const found = candidates.find((d) => existsSync(join(d, 'model.json')));
  if (!found) {
    throw new TricksError(
      `option "plugins.kd.teacher": no model.json in ${candidates.join(', ')}`,
      'give a tfjs LayersModel directory (model.json + weights.bin), e.g. the model/ folder of a finished tricks run',
    );
  }
  return found;
}

/**
 * Builds `teacherModel` from the container's model registry (the zoo and any model a plugin registered) and copies the weights stored in `dir` into it, in order
 * (the weights are read from the weights manifest, so the saved topology need not be loadable).
 */
async function namedTeacher(
  dir: string,
  spec: { name: string; options?: Record<string, unknown> },
  ctx: Pick<TrainContext, 'inputShape' | 'numClasses'>,
  models: ModelRegistry,
): Promise<LayersModel> {
  const artifacts = await fileHandler(dir).load!();
  const data = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData!));
  const map = decodeTensors(data, artifacts.weightSpecs ?? []);
  const saved = (artifacts.weightSpecs ?? []).map((s) => map[s.name]!);
  const model = models.build(spec.name, { inputShape: ctx.inputShape, numClasses: ctx.numClasses, options: spec.options });
  try {
    const shapes = (ws: { shape: number[] }[]) => ws.map((t) => t.shape.join('x')).join(',');
    if (shapes(saved) !== shapes(model.weights as unknown as { shape: number[] }[])) {
      throw new TricksError(
        `option "plugins.kd.teacherModel": the ${saved.length} weights in ${dir} do not fit model "${spec.name}" (${model.weights.length} weights)`,
        'give the model name and options the teacher was trained with, or leave teacherModel out to use the topology in model.json',
      );
    }
    model.setWeights(saved);
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    tf.dispose(Object.values(map));
  }
}

/**
 * Loads the teacher (inference only: its weights are frozen): the topology and weights in model.json, or,
 * with `teacherModel`, the named registry model with the stored weights copied in.
 */
export async function loadTeacher(
  o: Pick<KdOptions, 'teacher' | 'teacherModel'>,
  ctx: Pick<TrainContext, 'inputShape' | 'numClasses'> & { models?: ModelRegistry },
  warn: (m: string) => void = () => {},
): Promise<LayersModel> {
  const dir = resolveTeacherDir(o.teacher);
  let teacher: LayersModel;
  if (!o.teacherModel) teacher = await loadModel(dir);
  else {
    try {
      teacher = await namedTeacher(dir, o.teacherModel, ctx, ctx.models ?? new ModelRegistry());
    } catch (e) {
      // e.g. a teacher trained with model-hook plugins (se-block...): its own model.json still describes it
      const fallback = await loadModel(dir).catch(() => undefined);
      if (!fallback) throw e;
      warn(`kd: ${(e as Error).message.split('\n')[0]}; using the topology in ${dir}/model.json instead`);
      teacher = fallback;
    }
  }
  teacher.trainable = false;
  const inShape = teacher.inputs[0]!.shape.slice(1).join('x');
  if (inShape !== ctx.inputShape.join('x')) {
    teacher.dispose();
    throw new TricksError(
      `option "plugins.kd.teacher": the teacher in ${dir} takes ${inShape} inputs, the data is ${ctx.inputShape.join('x')}`,
      'distill from a teacher trained on the same data (and the same input size)',
    );
  }
  const out = teacher.outputs[0]!.shape;
  if (out[out.length - 1] !== ctx.numClasses) {
    teacher.dispose();
    throw new TricksError(
      `option "plugins.kd.teacher": the teacher in ${dir} has ${out[out.length - 1]} outputs, the data has ${ctx.numClasses} classes`,
    );
  }
  return teacher;
}

/** True when the teacher's last layer applies a softmax: its outputs are then probabilities, not logits. */
function endsWithSoftmax(model: LayersModel): boolean {
  const last = model.layers[model.layers.length - 1] as unknown as { getConfig(): Record<string, unknown> };
  return last.getConfig().activation === 'softmax' || model.layers[model.layers.length - 1]!.getClassName() === 'Softmax';
}

/** Teacher logits in inference mode, teacherBatchSize rows at a time. */
export function teacherLogits(teacher: LayersModel, x: tf.Tensor4D, teacherBatchSize: number, probabilities = false): tf.Tensor2D {
  return tf.tidy(() => {
    const n = x.shape[0];
    const bs = teacherBatchSize > 0 ? Math.min(teacherBatchSize, n) : n;
    const parts: tf.Tensor[] = [];
    for (let i = 0; i < n; i += bs) {
      const chunk = bs === n ? x : tf.slice(x, [i, 0, 0, 0], [Math.min(bs, n - i), -1, -1, -1]);
      parts.push(teacher.apply(chunk, { training: false }) as tf.Tensor);
    }
    const out = (parts.length === 1 ? parts[0]! : tf.concat(parts, 0)) as tf.Tensor2D;
    // log-probabilities are logits up to a per-row constant, which softmax(./T) ignores
    return probabilities ? tf.log(tf.maximum(out, 1e-30)) : out;
  });
}

const TEACHER_LOGITS = 'teacherLogits';

export default definePlugin<KdOptions>({
  name: PLUGIN_NAME,
  description: 'knowledge distillation: alpha*T^2*KL(softmax(t/T)||softmax(s/T)) + (1-alpha)*CE, teacher from a tfjs model directory',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['teacher'],
    properties: {
      teacher: { type: 'string', minLength: 1 },
      teacherModel: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: { name: { type: 'string' }, options: { type: 'object' } },
      },
      temperature: { type: 'number', exclusiveMinimum: 0, default: 2 },
      alpha: { type: 'number', minimum: 0, maximum: 1, default: 0.7 },
      teacherBatchSize: { type: 'integer', minimum: 0, default: 0 },
    },
  },
  apply(api, options) {
    let teacher: LayersModel | undefined;
    let probabilities = false;
    api.hooks.setup.tapPromise({ name: PLUGIN_NAME }, async (ctx) => {
      teacher = await loadTeacher(options, { inputShape: ctx.inputShape, numClasses: ctx.numClasses, models: api.models }, (m) =>
        ctx.logger.warn(m),
      );
      probabilities = endsWithSoftmax(teacher);
      ctx.logger.info(
        `kd: teacher ${resolveTeacherDir(options.teacher)} (${teacher.countParams().toLocaleString('en-US')} parameters${probabilities ? ', softmax output: using log-probabilities' : ''}), T=${options.temperature}, alpha=${options.alpha}`,
      );
    });
    // Last on the batch hook: the teacher sees the same augmented, mixed batch as the student, outside the gradient tape.
    api.hooks.batch.tap({ name: PLUGIN_NAME, stage: STAGE_REPORT }, (batch: Batch) => {
      if (!teacher) return batch;
      return {
        ...batch,
        meta: { ...batch.meta, [TEACHER_LOGITS]: teacherLogits(teacher, batch.x, options.teacherBatchSize, probabilities) },
      };
    });
    api.hooks.loss.tap({ name: PLUGIN_NAME, stage: STAGE }, (state) => {
      if (!teacher) throw new TricksError('kd: the teacher is not loaded (the setup hook did not run)');
      const t =
        (state.batch.meta[TEACHER_LOGITS] as tf.Tensor2D | undefined) ??
        teacherLogits(teacher, state.batch.x, options.teacherBatchSize, probabilities);
      return kdTerms(state, t, options);
    });
    // every exit (a failed or interrupted run too): free the teacher
    api.hooks.teardown.tapPromise({ name: PLUGIN_NAME }, async () => {
      teacher?.dispose();
      teacher = undefined;
    });
  },
});
