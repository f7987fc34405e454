export { runAblation, selectRungs } from './ablate/ablate.js';
export { type RunSpec, loadLadder, planAblation } from './ablate/plan.js';
export { type RunRecord, runOne } from './ablate/run.js';
export { type AblationSummary, ablationMarkdown, summarize, summarizeRuns } from './ablate/summary.js';
export { benchDataParallel, benchTrain, torchPeer, type PeerResult } from './bench.js';
export { HtmlReporter, type Reporter } from './report/report.js';
export { createStandardTrainer, standardBuiltins } from './standard.js';
export { reportBuiltin, reportModule } from './report/builtin.js';
export { DIVERGENCE_DEFAULTS, type DivergenceOptions, divergenceCheck } from './divergence.js';
export { buildZooModel, zooModelRef } from './zoo-model.js';
export {
  LR_FIND_DEFAULTS,
  LR_FIND_FILES,
  type LrFindResult,
  type LrSweep,
  type Suggestion,
  type Suggestions,
  SweepRecorder,
  checkSweep,
  fmtLr,
  lrFind,
  lrFindSpec,
  lrFindSummary,
  minimum,
  steep,
  suggest,
  sweepLr,
  valley,
} from './lr-find.js';
export {
  ClassificationInterpreter,
  INTERPRET_DEFAULTS,
  INTERPRETER,
  type Interpretation,
  type InterpretOptions,
  type Interpreter,
  interpretOptions,
} from './report/interpretation.js';
export { camLayer, gradCam, mostConfused, runGraph, sampleResults, topLosses } from './report/interpret.js';
