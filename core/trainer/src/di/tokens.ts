/** Service tokens: the only keys of the container. Bind or rebind them from a ContainerModule. */
export const TOKENS = {
  /** ResolvedConfig of the run. */
  Config: Symbol.for('tricks.Config'),
  /** BackendService: selects and prepares the tfjs backend. */
  Backend: Symbol.for('tricks.Backend'),
  /** ModelRegistry: backbones by name. */
  Models: Symbol.for('tricks.Models'),
  /** DatasetRegistry: dataset formats by name. */
  Datasets: Symbol.for('tricks.Datasets'),
  /** OptimizerRegistry: optimizers by name. */
  Optimizers: Symbol.for('tricks.Optimizers'),
  /** ScheduleRegistry: learning-rate schedules by name. */
  Schedules: Symbol.for('tricks.Schedules'),
  /** LossFunction: the base loss (softmax cross-entropy with soft targets). */
  Loss: Symbol.for('tricks.Loss'),
  /** GradientFunction: (f, vars) => {value, grads}, tf.variableGrads by default (@tricks/backend-wasm frees as it goes). */
  Gradients: Symbol.for('tricks.Gradients'),
  /** TrainingForward: (model, x) => logits of a training step, model.apply(x, {training: true}) by default. */
  Forward: Symbol.for('tricks.Forward'),
  /** InferenceForward: (model, x) => logits at evaluation, model.predict by default (the tta plugin rebinds it). */
  Inference: Symbol.for('tricks.Inference'),
  /** Sampler: the order of training items per epoch. */
  Sampler: Symbol.for('tricks.Sampler'),
  /** RngFactory: seeded generators (seed) => Rng; the trainer makes the run's generators with it. */
  Rng: Symbol.for('tricks.Rng'),
  /** Logger. */
  Logger: Symbol.for('tricks.Logger'),
  /** MetricsSink (multi-bound: every sink gets every epoch). */
  MetricsSink: Symbol.for('tricks.MetricsSink'),
  /** Checkpointer: writes and reads resumable checkpoints. */
  Checkpointer: Symbol.for('tricks.Checkpointer'),
  /** Exporter: writes the trained model's artifacts. */
  Exporter: Symbol.for('tricks.Exporter'),
  /** Reporter: writes report.html at the end of a run (bound by @tricks/lab's report built-in). */
  Reporter: Symbol.for('tricks.Reporter'),
  /** The Trainer. */
  Trainer: Symbol.for('tricks.Trainer'),
} as const;
