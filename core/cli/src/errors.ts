import { TricksError, Interrupted } from '@tricks/core';

/** Prints an expected error as one clear message (no stack trace) and returns the exit code. */
export function reportError(e: unknown): number {
  if (e instanceof Interrupted) {
    process.stderr.write(`${e.message}\n`);
    return e.signal === 'SIGTERM' ? 143 : 130;
  }
  if (e instanceof TricksError) {
    process.stderr.write(`error: ${e.message}\n`);
    return 1;
  }
  const err = e as Error & { code?: string };
  if (err?.code === 'commander.helpDisplayed' || err?.code === 'commander.version') return 0;
  if (err?.code?.startsWith?.('commander.')) return 1;
  process.stderr.write(`internal error (please report it): ${err?.stack ?? String(e)}\n`);
  return 2;
}
