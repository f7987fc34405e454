export {
  type ModelQuantization,
  type QRange,
  activationRange,
  affineQParams,
  fakeQuantize,
  quantizeInts,
  symmetricQParams,
  weightQParams,
  weightRange,
} from './quant.js';
