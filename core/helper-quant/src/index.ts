export { MinMaxObserver, type ModelQuantization, activationRange, affineQParams, fakeQuantize, fakeQuantizeWeight, quantizeInts, symmetricQParams, weightQParams, weightRange } from './quant.js';
