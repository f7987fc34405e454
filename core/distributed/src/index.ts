export { QUEUE_NAME, type RunJobData, readAttempts } from './jobs.js';
export { type LocalRedis, startLocalRedis } from './local-redis.js';
export { type RunRecord, type RunSpec, loadRunner, specUserConfig } from './runner.js';
export { type StudyReport, collectStudy, submitStudy } from './study.js';
export { parseGrid, planSweep } from './sweep.js';
export { parseQueueUrl } from './url.js';
export { startWorker } from './worker.js';
