export {
  type Checkpoint,
  type CheckpointFormat,
  type ConvertOptions,
  type ConvertReport,
  IMAGENET_MEAN,
  IMAGENET_STD,
  INPUT_TEXT,
  buildZooModel,
  claimConvertFolder,
  convertCheckpoint,
  convertFile,
  convertedMetadata,
  guessModel,
  readCheckpoint,
} from './convert.js';
export { SOURCE_MODELS, type SourceModel, sourceModel } from './names.js';
export { ALLOWED_GLOBALS, CheckpointError } from './torch.js';
export { type CheckpointTensor } from './tensor.js';
export { initFromBuiltin, transferWeights } from './init-from.js';
export { cacheDir, fetchPretrained, hashPrefix, TORCHVISION_WEIGHTS, weightsUrl } from './pretrained.js';
