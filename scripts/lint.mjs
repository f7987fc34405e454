// prettier --check and eslint (typescript-eslint, type-aware) over the repository. The tools live in
// tools/lint (TypeScript 6 for typescript-eslint's type information; the workspaces build with
// TypeScript 7, which has no JS API); installed there on first use.
//   node scripts/lint.mjs [--fix]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './packages.mjs';

const tools = join(root, 'tools', 'lint');
const bin = (name) => join(tools, 'node_modules', '.bin', name);
const fix = process.argv.includes('--fix');

export function ensureTools() {
  if (existsSync(bin('eslint')) && existsSync(bin('prettier'))) return;
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--silent'], { cwd: tools, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm ci in tools/lint failed');
}

/** Runs one linter; returns true when it passed. */
export function run(name) {
  const args =
    name === 'prettier'
      ? [fix ? '--write' : '--check', '--log-level', 'warn', '.']
      : ['-c', join(tools, 'eslint.config.js'), ...(fix ? ['--fix'] : []), '.'];
  const r = spawnSync(bin(name), args, { cwd: root, stdio: 'inherit' });
  return r.status === 0;
}

if (process.argv[1] && process.argv[1].endsWith('lint.mjs')) {
  ensureTools();
  const ok = ['prettier', 'eslint'].map((n) => {
    const pass = run(n);
    console.log(`${n}: ${pass ? 'clean' : 'problems above'}`);
    return pass;
  });
  process.exit(ok.every(Boolean) ? 0 : 1);
}
