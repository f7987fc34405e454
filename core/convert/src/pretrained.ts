import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TricksError } from '@tricks/core';
import { SOURCE_MODELS } from './names.js';

/**
 * torchvision's default weights (`Weights.DEFAULT`) of each zoo model they fit, by zoo name; the part of
 * the file name after the last dash is a prefix of the file's SHA-256 (torchvision's check_hash).
 * test/pretrained.test.ts checks this table against the installed torchvision.
 */
export const TORCHVISION_WEIGHTS: Record<string, string> = {
  resnet18: 'https://download.pytorch.org/models/resnet18-f37072fd.pth',
  resnet34: 'https://download.pytorch.org/models/resnet34-b627a593.pth',
  'resnet50-b': 'https://download.pytorch.org/models/resnet50-11ad3fa6.pth',
  'resnext50-32x4d': 'https://download.pytorch.org/models/resnext50_32x4d-1a0047aa.pth',
  'mobilenetv3-large': 'https://download.pytorch.org/models/mobilenet_v3_large-5c1a4163.pth',
  'mobilenetv3-small': 'https://download.pytorch.org/models/mobilenet_v3_small-047dcff4.pth',
  'efficientnet-b0': 'https://download.pytorch.org/models/efficientnet_b0_rwightman-3dd342df.pth',
  'swin-t': 'https://download.pytorch.org/models/swin_t-704ceda3.pth',
};

/** Where downloaded weights are kept: TRICKS_CACHE, else $XDG_CACHE_HOME/tricks or ~/.cache/tricks; under weights/. */
export const cacheDir = () =>
  join(process.env.TRICKS_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tricks'), 'weights');

/** The SHA-256 prefix in a torchvision file name ("resnet18-f37072fd.pth" -> "f37072fd"). */
export const hashPrefix = (file: string) => /-([a-f0-9]{6,})\./.exec(basename(file))?.[1];

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

export interface FetchOptions {
  /** The address to download from instead of the table's (its file name still carries the hash prefix). */
  url?: string;
  /** Called as bytes arrive: done, total (0 when the server does not say). */
  progress?: (done: number, total: number) => void;
  log?: (m: string) => void;
}

/** The torchvision address of a zoo model's weights, or a TricksError naming the models that have them. */
export function weightsUrl(zoo: string): string {
  const url = TORCHVISION_WEIGHTS[zoo];
  if (url) return url;
  const src = SOURCE_MODELS.find((s) => s.name === zoo && s.publisher === 'torchvision' && TORCHVISION_WEIGHTS[s.zoo]);
  throw new TricksError(
    `--pretrained: torchvision publishes no weights for the zoo model ${zoo}`,
    src
      ? `torchvision's ${zoo} is the zoo's ${src.zoo}: use --model ${src.zoo}`
      : `models with torchvision weights: ${Object.keys(TORCHVISION_WEIGHTS).join(', ')} (other weights: tricks convert, then --init-from)`,
  );
}

/**
 * The cached file of torchvision's weights for a zoo model, downloaded first when missing (to a temp file,
 * SHA-256 checked against the prefix in its name, then renamed into the cache). Offline, one error says
 * which file to download and where to put it.
 */
export async function fetchPretrained(zoo: string, o: FetchOptions = {}): Promise<string> {
  const url = o.url ?? weightsUrl(zoo);
  const prefix = hashPrefix(url);
  const file = join(cacheDir(), basename(new URL(url).pathname));
  const check = (f: string) => !prefix || sha256(f).startsWith(prefix);
  if (existsSync(file)) {
    if (check(file)) return file;
    o.log?.(`pretrained: ${file} does not match the SHA-256 prefix ${prefix} in its name: downloading it again`);
  }
  await mkdir(cacheDir(), { recursive: true });
  // a download a kill cut short left FILE.tmp-PID-TIME behind: drop those whose process is gone
  for (const n of readdirSync(cacheDir())) {
    const pid = n.startsWith(`${basename(file)}.tmp-`) ? Number(/\.tmp-(\d+)-\d+$/.exec(n)?.[1]) : NaN;
    if (pid && !alive(pid)) await rm(join(cacheDir(), n), { force: true });
  }
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const offline = (why: string) =>
    new TricksError(
      `--pretrained: could not download ${url} (${why})`,
      `download it yourself and put it at ${file} (TRICKS_CACHE sets the cache folder), or give the file with --init-from`,
    );
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    const c = (e as { cause?: { code?: string; message?: string } }).cause;
    throw offline(c?.code ?? c?.message ?? (e as Error).message);
  }
  if (!res.ok || !res.body) throw offline(`HTTP ${res.status}`);
  const total = Number(res.headers.get('content-length') ?? 0);
  let done = 0;
  const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  body.on('data', (chunk: Buffer) => {
    done += chunk.length;
    o.progress?.(done, total);
  });
  try {
    await pipeline(body, createWriteStream(tmp));
    if (total && done !== total) throw offline(`the transfer ended at ${done} of ${total} bytes`);
    if (!check(tmp))
      throw new TricksError(
        `--pretrained: ${url} does not match the SHA-256 prefix ${prefix} in its name (a damaged or altered download)`,
        'try again; if it persists, download the file yourself and compare its SHA-256',
      );
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    if (e instanceof TricksError) throw e;
    throw offline((e as Error).message);
  }
  o.log?.(`pretrained: ${url} -> ${file} (${(done / 1e6).toFixed(1)} MB, SHA-256 prefix ${prefix} checked)`);
  return file;
}
