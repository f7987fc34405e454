import cliProgress from 'cli-progress';
import { definePlugin, type Logger, type PluginDefinition } from '@tricks/core';

/** Seconds as m:ss (or h:mm:ss); '-' before there is an estimate. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600),
    m = Math.floor((s % 3600) / 60),
    r = s % 60;
  const mm = h ? String(m).padStart(2, '0') : String(m);
  return `${h ? `${h}:` : ''}${mm}:${String(r).padStart(2, '0')}`;
}

/**
 * The time left in the epoch and in the run, from this epoch's pace so far: the epoch's remaining steps,
 * plus the later epochs' steps at the same pace (evaluation time not counted).
 */
export function etas(done: number, total: number, elapsedSeconds: number, epochsAfter: number): { epoch: number; run: number } {
  if (done <= 0 || elapsedSeconds <= 0) return { epoch: NaN, run: NaN };
  const perStep = elapsedSeconds / done;
  const epoch = (total - done) * perStep;
  return { epoch, run: epoch + epochsAfter * total * perStep };
}

/** A progress bar on a TTY stderr; a plain line every few seconds otherwise. Both show the ETA of the epoch and of the run. */
export class Progress {
  private bar: cliProgress.SingleBar | undefined;
  private lastLine = 0;
  private total = 0;
  private label = '';
  private started = 0;
  private epochsAfter = 0;

  constructor(
    private readonly logger: Logger,
    private readonly tty = Boolean(process.stderr.isTTY),
  ) {}

  start(label: string, total: number, epochsAfter = 0): void {
    this.total = total;
    this.label = label;
    this.epochsAfter = epochsAfter;
    this.lastLine = this.started = performance.now();
    if (this.tty) {
      this.bar = new cliProgress.SingleBar(
        {
          format: `${label} [{bar}] {value}/{total} loss {loss} lr {lr} {ips} img/s eta {eta} (run {runEta})`,
          stream: process.stderr,
          hideCursor: true,
          clearOnComplete: true,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, 0, { loss: '-', lr: '-', ips: '-', eta: '-', runEta: '-' });
    }
  }

  update(done: number, loss: number, lr: number, ips: number): void {
    const eta = etas(done, this.total, (performance.now() - this.started) / 1000, this.epochsAfter);
    if (this.bar) {
      this.bar.update(done, {
        loss: loss.toFixed(4),
        lr: lr.toPrecision(3),
        ips: ips.toFixed(0),
        eta: formatEta(eta.epoch),
        runEta: formatEta(eta.run),
      });
    } else if (performance.now() - this.lastLine > 10000) {
      this.lastLine = performance.now();
      this.logger.info(
        `${this.label} step ${done}/${this.total} loss ${loss.toFixed(4)} lr ${lr.toPrecision(3)} ${ips.toFixed(0)} img/s eta ${formatEta(eta.epoch)} (run ${formatEta(eta.run)})`,
      );
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
      progress.start(`epoch ${ctx.epoch + 1}/${ctx.config.epochs}`, ctx.stepsPerEpoch, ctx.config.epochs - ctx.epoch - 1);
    });
    api.hooks.stepEnd.tap('tricks:progress', (ctx, s) => progress?.update(ctx.stepInEpoch, s.loss, ctx.lr, s.imagesPerSec));
    api.hooks.epoch.tapPromise({ name: 'tricks:progress', stage: -Infinity }, stop);
    api.hooks.interrupt.tapPromise({ name: 'tricks:progress', stage: -Infinity }, stop);
    api.hooks.teardown.tapPromise({ name: 'tricks:progress', stage: -Infinity }, stop);
  },
}) as PluginDefinition;
