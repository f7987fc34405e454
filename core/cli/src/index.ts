export { type ExportFlags, exportCommand } from './export.js';
export { Progress } from './progress.js';
export { configFromFlags } from './train.js';
