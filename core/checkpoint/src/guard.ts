import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { TricksError, type Logger } from '@tricks/core';

/** The lock a run holds on its folder: `{ pid, host, started }`. */
export const LOCK = '.tricks.lock';
/** The entries that make a folder a run's. */
export const RUN_ENTRIES = ['run.json', 'metrics.jsonl', 'checkpoint', 'checkpoint.old'];
/** What --overwrite removes before the new run starts (model/, export/ and report.html are replaced when written). */
const REPLACED = [...RUN_ENTRIES, 'checkpoint.damaged'];
/** A temp file or folder of an interrupted atomic write (writeFileAtomic, writeDirAtomic, checkpoint saves). */
const DEBRIS = /^\..+\.tmp-\d+-\d+-\d+$/;

interface Holder {
  pid: number;
  host: string;
  started: string;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Takes OUT/.tricks.lock for this process (created exclusively, so two runs cannot both take it). A lock
 * whose process is gone (a kill -9, a crash) is replaced with a warning. Returns the release.
 */
export function lockRunFolder(out: string, logger?: Logger): () => void {
  mkdirSync(out, { recursive: true });
  const file = join(out, LOCK);
  const me: Holder = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  for (;;) {
    try {
      writeFileSync(file, JSON.stringify(me), { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let held: Holder | undefined;
      try {
        held = JSON.parse(readFileSync(file, 'utf8')) as Holder;
      } catch {
        // empty or cut short: its writer died while taking it
      }
      if (held && (held.host !== me.host || alive(held.pid)))
        throw new TricksError(
          `${out} is in use by another run (PID ${held.pid} on ${held.host}, since ${held.started}; lock file ${file})`,
          held.host === me.host
            ? `wait for it to finish or stop it, or train into another --out (if PID ${held.pid} is not a tricks run, delete ${file})`
            : `if no run is active on ${held.host}, delete ${file}`,
        );
      logger?.warn(`${file}: replaced the lock of a run that is gone (PID ${held?.pid ?? 'unknown'})`);
      rmSync(file, { force: true });
    }
  }
  return () => {
    try {
      if ((JSON.parse(readFileSync(file, 'utf8')) as Holder).pid === process.pid) rmSync(file);
    } catch {
      // already gone
    }
  };
}

export interface ClaimOptions {
  /** The run continues the one in `out` (its checkpoint folders are the checkpointer's to recover). */
  resumed?: boolean;
  /** Replace a previous run in `out`. */
  overwrite?: boolean;
  logger?: Logger;
}

/**
 * Makes `out` this run's: refuses a file, locks the folder, refuses a folder that holds another run
 * unless resuming or `overwrite` (which removes that run's checkpoints, metrics and run.json, and says so),
 * and removes the debris of interrupted writes. Returns the lock's release.
 */
export function claimRunFolder(out: string, o: ClaimOptions = {}): () => void {
  if (existsSync(out) && !statSync(out).isDirectory())
    throw new TricksError(`--out ${out} is a file, not a folder`, 'give --out a folder (it is created if missing)');
  const release = lockRunFolder(out, o.logger);
  try {
    const found = RUN_ENTRIES.filter((e) => existsSync(join(out, e)));
    if (!o.resumed && found.length) {
      if (!o.overwrite)
        throw new TricksError(
          `--out ${out} holds another run (${found.join(', ')})`,
          `continue it with \`tricks train --resume ${out}\`, replace it with --overwrite, or train into another --out`,
        );
      for (const e of REPLACED) rmSync(join(out, e), { recursive: true, force: true });
      o.logger?.info(`--overwrite: removed the previous run's ${found.join(', ')} from ${out}`);
    }
    const debris = readdirSync(out, { recursive: true })
      .map(String)
      .filter((p) => p.split('/').some((n) => DEBRIS.test(n)) && !(o.resumed && p.startsWith('.checkpoint.tmp-')))
      .filter((p, _, all) => !all.some((q) => q !== p && p.startsWith(`${q}/`)));
    for (const p of debris) rmSync(join(out, p), { recursive: true, force: true });
    if (debris.length) o.logger?.info(`${out}: removed ${debris.length} temp file(s) that interrupted writes left`);
  } catch (e) {
    release();
    throw e;
  }
  return release;
}
