import 'reflect-metadata';

export { type BackendName, type BackendProvider, type BackendService, DefaultBackendService } from './backends/select.js';
export { isOutOfMemory, microBatchRanges, outOfMemory, sliceBatch } from './trainer/memory.js';
export {
  type BatchOptions,
  type DataSplit,
  type Dataset,
  type ResizePolicy,
  type DecodeCrop,
  InMemoryDataset,
  type RawBatch,
  stratifiedSplit,
} from './data/dataset.js';
export { type LoaderCrop, type Sampler, ShuffleSampler, epochRng, itemRng, loadBatches } from './data/loader.js';
export { COMMON_DATA_OPTIONS, type DataOptions, type DatasetFactory, DatasetRegistry } from './data/registry.js';
export { type Composition, type CreateTrainerOptions, type Services, compose, coreModule, createTrainer } from './di/container.js';
export { TOKENS } from './di/tokens.js';
export { CancelBatch, NonFiniteLoss, StopTraining, TricksError } from './hooks/errors.js';
export {
  type Artifact,
  type Batch,
  type BatchMeta,
  type BlockInfo,
  type BuildHooks,
  type DecodeInfo,
  type DecodePlan,
  type EpochMetrics,
  type Hooks,
  type LossState,
  type NeckInfo,
  type PartialEpoch,
  type PluginHooks,
  type RunEnd,
  type RunResult,
  STAGE_AUGMENT,
  STAGE_COMPRESS,
  STAGE_DATA,
  STAGE_LOSS,
  STAGE_MIX,
  STAGE_REGULARIZE,
  STAGE_REPORT,
  type StepStats,
  type TapOnly,
  type TapOptions,
  createHooks,
  tapOnly,
} from './hooks/hooks.js';
export type { GradientFunction, InferenceForward, TrainingForward } from './contract.js';
export { writeDirAtomic, writeError, writeFileAtomic } from './io/atomic.js';
export { ConsoleLogger, type Logger, MemoryLogger } from './io/logger.js';
export { decodeTensors, encodeTensors, fileHandler, loadModel, saveModel } from './io/model-files.js';
export { type LossFunction, crossEntropy, lossTerms, weightedMean } from './losses/cross-entropy.js';
export { type ModelBuilder, type ModelEntry, ModelRegistry, type ModelSpec, emptyBuildHooks } from './models/registry.js';
export { clipByGlobalNorm, globalNorm } from './optim/clip.js';
export {
  ADAM_STEP_KERNEL,
  Adam,
  type AdamStepAttrs,
  AdamW,
  type OptimizerOptions,
  SGD,
  SGD_STEP_KERNEL,
  type SgdStepAttrs,
  TricksOptimizer,
} from './optim/optimizer.js';
export { OptimizerRegistry } from './optim/registry.js';
export { type LrSchedule, ScheduleRegistry } from './optim/schedule.js';
export { CORE_VERSION, checkCoreRange, satisfies } from './plugin/compat.js';
export {
  DEFAULT_SETTINGS,
  type ResolvedConfig,
  type ResolvedPlugin,
  SETTINGS_SCHEMA,
  type TrainSettings,
  type UserConfig,
  loadConfigFile,
  merge,
} from './plugin/config.js';
export {
  type JSONSchema,
  type LadderStep,
  type PluginApi,
  type PluginDefinition,
  type PluginInstance,
  type PluginItem,
  type PresetDefinition,
  type PresetItem,
  definePlugin,
  definePreset,
} from './plugin/define.js';
export { type Resolution, type ResolveOptions, parsePluginFlag, resolveConfig } from './plugin/resolve-config.js';
export { listInstalled, load, loadPreset } from './plugin/resolve.js';
export { validate } from './plugin/validate.js';
export { CHECKPOINT_FORMAT, type Checkpointer, NoCheckpointer, type TrainerState } from './trainer/checkpoint.js';
export { type EvalResult, type PluginState, type TrainContext } from './trainer/context.js';
export { defaultInference, evaluateModel, toBatch } from './trainer/evaluate.js';
export { type Exporter, TfjsExporter } from './trainer/exporter.js';
export { JsonlMetricsSink, METRIC_KEYS, monitoredMetric, type MetricsSink } from './trainer/sinks.js';
export { Interrupted, type RunOptions, Trainer, hashConfig } from './trainer/trainer.js';
export { closest } from './util/closest.js';
export { Rng } from './util/rng.js';
export { withSeededMathRandom } from './util/seeded-random.js';
