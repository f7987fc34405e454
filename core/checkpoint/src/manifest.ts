import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';

export const MANIFEST = 'manifest.json';
export const MANIFEST_FORMAT = 1;

/** manifest.json, the last file of a generation: its number, where the run was, every other file's size and SHA-256. */
export interface Manifest {
  format: number;
  generation: number;
  epoch: number;
  step: number;
  files: Record<string, { bytes: number; sha256: string }>;
}

/** Flushes a file or a directory (its entries) to the disk. */
export async function fsync(path: string): Promise<void> {
  const h = await open(path, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Every file below dir, as paths relative to it, sorted; and the folders. */
async function tree(dir: string): Promise<{ files: string[]; dirs: string[] }> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const rel = (e: (typeof entries)[number]) => relative(dir, join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
  return {
    files: entries
      .filter((e) => e.isFile())
      .map(rel)
      .sort(),
    dirs: entries.filter((e) => e.isDirectory()).map(rel),
  };
}

/**
 * Seals a filled generation folder: fsyncs every file, writes manifest.json with their sizes and hashes
 * (then fsyncs it), and fsyncs every folder, so a power cut after this returns loses nothing of it.
 */
export async function seal(dir: string, meta: Omit<Manifest, 'format' | 'files'>): Promise<void> {
  const { files, dirs } = await tree(dir);
  const manifest: Manifest = { format: MANIFEST_FORMAT, ...meta, files: {} };
  for (const f of files) {
    const p = join(dir, f);
    await fsync(p);
    manifest.files[f] = { bytes: (await stat(p)).size, sha256: await sha256(p) };
  }
  const h = await open(join(dir, MANIFEST), 'wx');
  try {
    await h.writeFile(JSON.stringify(manifest, null, 1));
    await h.sync();
  } finally {
    await h.close();
  }
  for (const d of [...dirs, '.']) await fsync(join(dir, d));
}

/** The manifest of a generation folder; undefined when it has none (unfinished, or written before manifests). */
export async function readManifest(dir: string): Promise<Manifest | undefined> {
  const text = await readFile(join(dir, MANIFEST), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch (e) {
    throw new Error(`not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (m?.format !== MANIFEST_FORMAT || typeof m.files !== 'object' || !Number.isInteger(m.generation))
    throw new Error(`${MANIFEST} is not a manifest this version reads`);
  return m;
}

/** What is wrong with a generation folder against its manifest (the first fault, naming the file), or undefined when it is intact. */
export async function verify(dir: string, m: Manifest): Promise<string | undefined> {
  for (const [f, want] of Object.entries(m.files)) {
    const p = join(dir, f);
    const size = await stat(p).then(
      (s) => s.size,
      () => undefined,
    );
    if (size === undefined) return `${p} is missing`;
    if (size !== want.bytes)
      return `${p} has ${size.toLocaleString('en-US')} bytes, the manifest ${want.bytes.toLocaleString('en-US')} (truncated or appended to)`;
    if ((await sha256(p)) !== want.sha256) return `${p} does not match its SHA-256 in ${MANIFEST} (changed after it was written)`;
  }
  return undefined;
}
