import cliProgress from 'cli-progress';
import { definePlugin, type Logger, type PluginDefinition } from '@tricks/core';

/** A progress bar on a TTY stderr; a plain line every few seconds otherwise. */
export class Progress {
  private bar: cliProgress.SingleBar | undefined;
  private lastLine = 0;
  private total = 0;
  private label = '';

  constructor(
    private readonly logger: Logger,
    private readonly tty = Boolean(process.stderr.isTTY),
  ) {}

  start(label: string, total: number): void {
    this.total = total;
    this.label = label;
    this.lastLine = performance.now();
    if (this.tty) {
      this.bar = new cliProgress.SingleBar(
        {
          format: `${label} [{bar}] {value}/{total} loss {loss} lr {lr} {ips} img/s`,
          stream: process.stderr,
          hideCursor: true,
          clearOnComplete: true,
        },
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

/** The built-in plugin behind the progress bar: a bar per epoch, updated after every step, gone before the epoch line. */
export const progressBuiltin: PluginDefinition = definePlugin({
  name: 'tricks:progress',
  description: 'a progress bar on a TTY, a line every 10 s otherwise',
  apply(api) {
    let progress: Progress | undefined;
    const stop = async () => progress?.stop();
    api.hooks.epochStart.tap('tricks:progress', (ctx) => {
      progress ??= new Progress(ctx.logger);
      progress.start(`epoch ${ctx.epoch + 1}/${ctx.config.epochs}`, ctx.stepsPerEpoch);
    });
    api.hooks.stepEnd.tap('tricks:progress', (ctx, s) => progress?.update(ctx.stepInEpoch, s.loss, ctx.lr, s.imagesPerSec));
    api.hooks.epoch.tapPromise({ name: 'tricks:progress', stage: -Infinity }, stop);
    api.hooks.interrupt.tapPromise({ name: 'tricks:progress', stage: -Infinity }, stop);
    api.hooks.teardown.tapPromise({ name: 'tricks:progress', stage: -Infinity }, stop);
  },
}) as PluginDefinition;
