export * from './quant.js';
export * from './graph.js';
export * from './fold.js';
export * from './quantize.js';
export * from './tfjs-formats.js';
export * from './onnx.js';
export * from './service.js';
