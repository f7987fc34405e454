export { bnScale, foldablePairs, scaleKernel } from './fold.js';
export { weightOf } from '@tricks/models';
export { toOnnx } from './onnx.js';
export { quantizeModel } from './quantize.js';
export {
  type EvalData,
  type ExportRecord,
  calibrationBatches,
  checkFormats,
  exportRun,
  loadOrt,
  modelQuantization,
  predictTop1,
  tfjsTop1,
  verifyRecord,
  writeFormat,
} from './service.js';
export { saveTfjs } from './tfjs-formats.js';
export { exportBuiltin, exportFormats } from './builtin.js';
export { benchOnnxInference, modelFile, onnxInfo, openDeployed, type DeployedModel, type InferenceMetaFields } from './deployed.js';
