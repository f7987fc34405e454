/**
 * Typed errors. A TricksError is an expected, user-facing failure: the CLI prints its message
 * without a stack trace. CancelBatch and StopTraining are control flow for taps, like fastai's
 * CancelBatchException and CancelFitException.
 */
export class TricksError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(hint ? `${message}\n  ${hint}` : message);
    this.name = 'TricksError';
  }
}

/** Thrown by a tap (batch, loss) to skip the current batch; the trainer moves on. */
export class CancelBatch extends Error {
  constructor(readonly reason = 'batch cancelled') {
    super(reason);
    this.name = 'CancelBatch';
  }
}

/**
 * Thrown by a tap to end the run cleanly: from a step hook after the current step, from an `epoch` tap
 * after that epoch (its later taps, the checkpoint included, still run); `done` still runs.
 */
export class StopTraining extends Error {
  constructor(readonly reason = 'training stopped') {
    super(reason);
    this.name = 'StopTraining';
  }
}

/** The loss became NaN or infinite; the last good checkpoint is kept. */
export class NonFiniteLoss extends TricksError {
  constructor(
    readonly epoch: number,
    readonly step: number,
    value: number,
  ) {
    super(
      `loss is ${value} at epoch ${epoch}, step ${step}: training stopped before the weights were updated`,
      'the last good checkpoint was kept; lower the learning rate or check the data and the plugins that change the loss',
    );
    this.name = 'NonFiniteLoss';
  }
}
