// What the end-to-end tests of the `tricks` CLI share: the bin, a temp dir, a run of the CLI, a short quick-start run.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const tricks = join(root, 'core', 'cli', 'bin', 'tricks.js');
export const tmp = () => mkdtempSync(join(tmpdir(), 'tricks-e2e-'));

export function run(args: string[], cwd = root) {
  const r = spawnSync(process.execPath, [tricks, ...args], { cwd, encoding: 'utf8', timeout: 300000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A short quick-start run on digits (1 epoch of 25 steps on 1,600 images, wasm) into `out`; returns its CLI result. */
export function trainShort(out: string, extra: string[] = []) {
  const t = run([
    'train',
    '--preset',
    'quickstart',
    '--epochs',
    '1',
    '--limit-train',
    '1600',
    '--steps',
    '25',
    '--backend',
    'wasm',
    '--out',
    out,
    ...extra,
  ]);
  expect(t.code, t.err).to.equal(0);
  return t;
}
