// Runs every package's mocha tests (one process per package, so backends and globals stay isolated)
// and ends with one line: `N passed, N failed`.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { root, packageDirs, readPackage } from './packages.mjs';
import { ensureTools, run as lint } from './lint.mjs';

const only = process.argv.slice(2);
let passed = 0,
  failed = 0,
  skipped = 0;

/** True when a compiled *.test.js exists below dir. */
function hasTests(dir) {
  if (!existsSync(dir)) return false;
  return readdirSync(dir, { recursive: true }).some((f) => String(f).endsWith('.test.js'));
}
const broken = [];
const failures = []; // mocha's failure reports, repeated at the end so a log's tail names them
for (const dir of packageDirs()) {
  if (only.length && !only.some((o) => dir.includes(o))) continue;
  const pkg = readPackage(dir);
  if (!pkg.scripts?.test) continue;
  if (!hasTests(join(root, dir, 'dist'))) continue;
  console.log(`\n=== ${dir}`);
  const out = await new Promise((resolve) => {
    const child = spawn('npm', ['test', '--silent'], { cwd: join(root, dir), stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
      process.stdout.write(d);
    });
    child.on('close', (code) => resolve({ text, code }));
  });
  // mocha's summary is its last "N passing" line (a test may print a nested run's output before it)
  const last = (re) => [...out.text.matchAll(re)].pop()?.[1] ?? 0;
  const p = Number(last(/^\s*(\d+) passing/gm));
  const f = Number(last(/^\s*(\d+) failing/gm));
  const k = Number(last(/^\s*(\d+) pending/gm));
  passed += p;
  failed += f;
  skipped += k;
  if (f)
    failures.push(
      `=== ${dir}\n` +
        out.text
          .slice(out.text.search(/\d+ failing/))
          .trim()
          .split('\n')
          .slice(0, 60)
          .join('\n'),
    );
  if (out.code !== 0 && f === 0) {
    failed += 1;
    broken.push(dir);
  }
}
// prettier and eslint, one test each (a full run only: `node scripts/run-tests.mjs core/trainer` skips them)
if (!only.length || only.includes('lint')) {
  console.log('\n=== lint (prettier --check, eslint)');
  ensureTools();
  for (const name of ['prettier', 'eslint']) {
    if (lint(name)) {
      passed++;
      console.log(`  ✔ ${name}`);
    } else {
      failed++;
      failures.push(`=== lint\n${name}: problems listed above (npm run format fixes what prettier can)`);
    }
  }
}
if (failures.length) console.log(`\nfailing tests, again:\n${failures.join('\n\n')}`);
if (broken.length) console.log(`\npackages whose test run failed outright: ${broken.join(', ')}`);
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
