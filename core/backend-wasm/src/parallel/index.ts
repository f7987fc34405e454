export { DataParallel, type Batch, type DataParallelOptions, type ModelRef, type SgdOptions } from './data-parallel.js';
