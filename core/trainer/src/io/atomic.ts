import { existsSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

let counter = 0;
const tmpName = (path: string) => join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Date.now()}-${counter++}`);

/** A failed write's error with the path it was for and its size: Node's ENOSPC names neither (the CLI's message does). */
export const writeError = (e: unknown, path: string, bytes?: number) => Object.assign(e as object, { path }, bytes && { bytes });

/** Writes a file through a flushed temp file and a rename, so readers never see half a file, even after a power cut. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tmpName(path);
  try {
    const h = await open(tmp, 'w');
    await h
      .writeFile(data)
      .then(() => h.sync())
      .finally(() => h.close());
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw writeError(e, path, typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength);
  }
}

/**
 * Fills a temp directory with `fill`, then swaps it in for `dir`: the old one is renamed aside (to a hidden
 * temp name beside it, never touching another folder) and removed only after the new one is in place.
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
  const old = tmpName(dir);
  if (existsSync(dir)) await rename(dir, old);
  await rename(tmp, dir);
  await rm(old, { recursive: true, force: true });
}
