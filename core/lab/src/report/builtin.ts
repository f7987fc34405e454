import { ContainerModule } from 'inversify';
import { definePlugin, TOKENS, type Trainer } from '@tricks/core';
import { HtmlReporter, type Reporter } from './report.js';
import { ClassificationInterpreter, INTERPRETER, interpretOptions } from './interpretation.js';

/**
 * Binds TOKENS.Reporter (HtmlReporter) and INTERPRETER (ClassificationInterpreter, the report's top losses, most
 * confused and Grad-CAM) and, when the trainer is built, checks config.report and taps its done hook to write
 * report.html after run.json (a failed report is a warning, never a failed run). Rebind either token in a later
 * module to change or silence it.
 */
export const reportModule = () =>
  new ContainerModule(({ bind, onActivation }) => {
    bind(TOKENS.Reporter).to(HtmlReporter).inSingletonScope();
    bind(INTERPRETER).to(ClassificationInterpreter).inSingletonScope();
    onActivation<Trainer>(TOKENS.Trainer, (context, trainer) => {
      interpretOptions(trainer.config); // a typo in config.report fails here, not after training
      const reporter = context.get<Reporter>(TOKENS.Reporter, { optional: true });
      if (!reporter) return trainer;
      trainer.hooks.done.tapPromise({ name: 'tricks:report', stage: -900 }, (ctx, result) =>
        reporter.write(ctx, result, ctx.lastEval).then(
          (f) => {
            if (f) ctx.logger.info(`report: ${f}`);
          },
          (e: Error) => ctx.logger.warn(`report.html not written: ${e.message}`),
        ),
      );
      return trainer;
    });
  });

/** The built-in plugin that writes OUT/report.html at the end of every run. */
export const reportBuiltin = definePlugin({
  name: 'tricks:report',
  description:
    'writes report.html (curves, confusion matrix, per-class accuracy, top losses, most confused, Grad-CAM, artifacts) at the end of a run',
  apply() {},
  modules: () => [reportModule()],
});
