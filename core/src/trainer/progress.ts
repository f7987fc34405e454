import cliProgress from 'cli-progress';
import type { Logger } from '../io/logger.js';

/** A progress bar on a TTY stderr; a plain line every few seconds otherwise. */
export class Progress {
  private bar: cliProgress.SingleBar | undefined;
  private lastLine = 0;
  private total = 0;
  private label = '';

  constructor(private readonly logger: Logger, private readonly tty = Boolean(process.stderr.isTTY)) {}

  start(label: string, total: number): void {
    this.total = total;
    this.label = label;
    this.lastLine = performance.now();
    if (this.tty) {
      this.bar = new cliProgress.SingleBar(
        { format: `${label} [{bar}] {value}/{total} loss {loss} lr {lr} {ips} img/s`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, 0, { loss: '-', lr: '-', ips: '-' });
    }
  }

  update(done: number, loss: number, lr: number, ips: number): void {
    if (this.bar) {
      this.bar.update(done, { loss: loss.toFixed(4), lr: lr.toPrecision(3), ips: ips.toFixed(0) });
    } else if (performance.now() - this.lastLine > 10000) {
      this.lastLine = performance.now();
      this.logger.info(`${this.label} step ${done}/${this.total} loss ${loss.toFixed(4)} lr ${lr.toPrecision(3)} ${ips.toFixed(0)} img/s`);
    }
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
