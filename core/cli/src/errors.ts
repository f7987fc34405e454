import { accessSync, constants, existsSync, readdirSync, statSync, statfsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { TricksError, Interrupted } from '@tricks/core';

/** Node's error of a system call; core tags a failed write with its path and size (Node's ENOSPC names neither). */
type SystemError = Error & { code?: string; syscall?: string; path?: string; bytes?: number };

const size = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1e3))} kB`);

/** The nearest folder of `path` that exists: the one a `mkdir -p` of it writes into. */
function existing(path: string): string {
  let p = resolve(path);
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

/** Bytes under `path` (a file or a folder), or 0 when it is not there. */
function du(path: string): number {
  try {
    const s = statSync(path);
    return s.isDirectory() ? readdirSync(path).reduce((n, f) => n + du(join(path, f)), 0) : s.size;
  } catch {
    return 0;
  }
}

function diskFull(e: SystemError): TricksError {
  const path = e.path ?? '(Node does not say which file)';
  let free: number | undefined;
  try {
    const s = statfsSync(existing(path));
    free = s.bavail * s.bsize;
  } catch {
    // no path, or no statfs here
  }
  // What the write needed: the file that failed, or the whole previous version of what it replaces (a checkpoint).
  const needed = Math.max(e.bytes ?? 0, e.path ? du(e.path) : 0);
  return new TricksError(
    `the disk is full (${e.code}): could not write ${path}${needed ? `, which needs at least ${size(needed)}` : ''}${free !== undefined ? `; ${size(free)} free on that disk` : ''}`,
    'free space on that disk, or write somewhere else (another --out); what was written before is intact, a run keeps its last complete checkpoint',
  );
}

/** A file-system error as one message the user can act on; undefined for any other error. */
export function fileSystemError(e: unknown): TricksError | undefined {
  const err = e as SystemError;
  if (typeof err?.code !== 'string' || typeof err.syscall !== 'string') return undefined;
  const path = err.path ?? '(Node does not say which file)';
  switch (err.code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return diskFull(err);
    case 'EROFS':
      return new TricksError(`${path} is on a read-only file system`, 'write to a folder on a writable disk (another --out)');
    case 'EACCES':
    case 'EPERM':
      return new TricksError(
        `permission denied: ${path} (${err.syscall})`,
        'write to a folder you may write to (another --out), or change its permissions',
      );
    case 'ENOENT':
      if (err.syscall === 'mkdir' && err.path) {
        // A recursive mkdir reports ENOENT when the folder it would create a level in is not writable.
        try {
          accessSync(existing(err.path), constants.W_OK);
        } catch (a) {
          return fileSystemError(a);
        }
      }
      return new TricksError(`${path} does not exist (${err.syscall})`, 'check the path; a file of a run may have been deleted or moved');
    case 'ENOTDIR':
      return new TricksError(`${path}: a part of that path is a file, not a folder`);
    case 'EISDIR':
      return new TricksError(`${path} is a folder, where a file was expected`);
    case 'EMFILE':
    case 'ENFILE':
      return new TricksError(`too many open files (${err.syscall} ${path})`, 'raise the limit (ulimit -n) or run fewer jobs at once');
    default:
      return undefined;
  }
}

/**
 * Fails before any work when `dir`, or the existing folder it would be created in, cannot be written:
 * a read-only disk or a folder without write permission gives one message now, not after the first epoch.
 */
export function checkWritable(dir: string): void {
  try {
    accessSync(existing(dir), constants.W_OK);
  } catch (e) {
    throw fileSystemError(e) ?? e;
  }
}

/** Prints an expected error as one clear message (no stack trace) and returns the exit code. */
export function reportError(e: unknown): number {
  if (e instanceof Interrupted) {
    process.stderr.write(`${e.message}\n`);
    return e.signal === 'SIGTERM' ? 143 : 130;
  }
  const known = e instanceof TricksError ? e : fileSystemError(e);
  if (known) {
    process.stderr.write(`error: ${known.message}\n`);
    return 1;
  }
  const err = e as Error & { code?: string };
  if (err?.code === 'commander.helpDisplayed' || err?.code === 'commander.version') return 0;
  if (err?.code?.startsWith?.('commander.')) return 1;
  process.stderr.write(`internal error (please report it): ${err?.stack ?? String(e)}\n`);
  return 2;
}
