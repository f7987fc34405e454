export * from './geometry.js';
export * from './color.js';
export * from './erase.js';
export * from './params.js';
export * from './autoaugment-ops.js';
export * from './mix.js';
