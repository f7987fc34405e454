export { bnScale, foldablePairs, scaleKernel } from './fold.js';
export { weightOf } from '@tricks/models';
export { toOnnx } from './onnx.js';
export { quantizeModel } from './quantize.js';
export {
  type EvalData,
  type ExportRecord,
  type WriteOptions,
  EXPORT_FORMATS,
  calibrationBatches,
  checkFormats,
  exportRun,
  loadOrt,
  modelQuantization,
  pixelBatch,
  predictTop1,
  runPreprocessing,
  tfjsTop1,
  verifyRecord,
  writeFormat,
} from './service.js';
export { saveTfjs } from './tfjs-formats.js';
export { type DeployPlan, type Deployed, deployModel, GRAY_WEIGHTS, PREPROCESS_LAYER, SOFTMAX_LAYER } from './deploy.js';
export { type InferenceMeta, deployPlan, inferenceMeta, ONNX_META_KEY, probePreprocessing, readInferenceMeta } from './inference.js';
export { demoPage, RUNTIME_SCRIPT, runtimeScript, TF_SCRIPT, tfMinJs } from './web.js';
export { exportBuiltin, exportFormats } from './builtin.js';
export {
  benchOnnxInference,
  modelFile,
  normalizeFrom,
  onnxInfo,
  openDeployed,
  type DeployedModel,
  type InferenceMetaFields,
} from './deployed.js';
export { claimExportFolder, EXPORT_MARK } from './folder.js';
