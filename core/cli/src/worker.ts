import { Command, Option } from 'commander';
import { startWorker } from '@tricks/distributed';
import { ConsoleLogger } from '@tricks/core';
import { int } from './flags.js';

interface WorkerFlags {
  queue: string;
  concurrency: number;
  backend?: string;
  lockDuration: number;
  stalledInterval: number;
  maxStalled: number;
}

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description(
      'train the runs that `tricks ablate|sweep --queue URL` enqueue; run one per machine. Runs write to their --out on the shared location',
    )
    .requiredOption(
      '--queue <url>',
      'Redis URL: redis://[:PASSWORD@]HOST:PORT[/DB], or rediss:// for TLS (password also from TRICKS_REDIS_PASSWORD, CA from TRICKS_REDIS_CA)',
    )
    .option('--concurrency <n>', 'runs trained at once on this machine, each in its own process', int('--concurrency', 1), 1)
    .addOption(
      new Option('--backend <name>', "backend for the runs this worker trains (default: the run config's)").choices([
        'auto',
        'tensorflow-gpu',
        'tensorflow',
        'wasm',
        'cpu',
      ]),
    )
    .addOption(
      new Option('--lock-duration <ms>', 'a job whose worker stops renewing its lock for this long is handed to another worker')
        .argParser(int('--lock-duration', 1000))
        .default(30000),
    )
    .addOption(
      new Option('--stalled-interval <ms>', 'how often to look for stalled jobs').argParser(int('--stalled-interval', 500)).default(30000),
    )
    .addOption(
      new Option('--max-stalled <n>', 'a job that stalls more often than this fails for good')
        .argParser(int('--max-stalled', 0))
        .default(3),
    )
    .action(async (f: WorkerFlags) => {
      const logger = new ConsoleLogger(Boolean(process.env.TRICKS_VERBOSE));
      const w = await startWorker({
        queue: f.queue,
        concurrency: f.concurrency,
        backend: f.backend,
        logger,
        lockDurationMs: f.lockDuration,
        stalledIntervalMs: f.stalledInterval,
        maxStalledCount: f.maxStalled,
      });
      await new Promise<void>((done) => {
        let signals = 0;
        const onSignal = (sig: NodeJS.Signals) => {
          if (++signals > 1) {
            logger.warn(`${sig} again: exiting now; running jobs stall and go to other workers`);
            process.exit(sig === 'SIGTERM' ? 143 : 130);
          }
          w.stop().then(done, (e: Error) => {
            logger.warn(`worker stop: ${e.message}`);
            done();
          });
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });
    });
}
