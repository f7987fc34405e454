import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let counter = 0;
const tmpName = (path: string) => join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Date.now()}-${counter++}`);

/** A failed write's error with the path it was for and its size: Node's ENOSPC names neither (the CLI's message does). */
export const writeError = (e: unknown, path: string, bytes?: number) => Object.assign(e as object, { path }, bytes && { bytes });

/** Writes a file through a temp file and a rename, so readers never see half a file. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tmpName(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw writeError(e, path, typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength);
  }
}

/**
 * Fills a temp directory with `fill`, then swaps it in for `dir`: the old one is renamed aside and
 * removed only after the new one is in place, so at every moment one complete version exists.
 */
export async function writeDirAtomic(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  await mkdir(dirname(dir), { recursive: true });
  const tmp = tmpName(dir);
  await mkdir(tmp, { recursive: true });
  try {
    await fill(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw writeError(e, dir);
  }
  const old = `${dir}.old`;
  await rm(old, { recursive: true, force: true });
  if (existsSync(dir)) await rename(dir, old);
  await rename(tmp, dir);
  await rm(old, { recursive: true, force: true });
}

/** The complete version of a directory written by writeDirAtomic, even if a swap was interrupted. */
export function completeDir(dir: string): string | undefined {
  if (existsSync(dir)) return dir;
  if (existsSync(`${dir}.old`)) return `${dir}.old`;
  return undefined;
}
