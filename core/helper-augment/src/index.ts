export { type Factors, IMAGENET_MEAN, IMAGENET_STD, adjustBrightness, adjustContrast, adjustHue, adjustSaturation, adjustSharpness, autocontrast, blend, equalize, grayscale, hsvToRgb, invert, normalize, perImage, posterize, rgbToHsv, solarize } from './color.js';
export { boxMask, erase } from './erase.js';
export { type AffineParams, type Box, affineBatch, affineMatrix, bilinearTaps, flipSome, gatherPerImage, inverseAffineMatrix, padCrop, padCropFast, resizedCrop, resizedCropFast, rotateMatrix, roundHalfEven } from './geometry.js';
export { type MixInfo, mixupBatch, permuteRows } from './mix.js';
export { randomResizedCropBox } from './params.js';
