// Builds every TypeScript project of the workspace with one `tsc -b` (project references order the build).
import { spawnSync } from 'node:child_process';
import { root, tsProjects } from './packages.mjs';

const r = spawnSync('npx', ['tsc', '-b', ...tsProjects(), ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
