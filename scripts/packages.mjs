// Lists the workspace packages that have a tsconfig.json, in a stable order (the trainer first).
import { readdirSync, existsSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export function packageDirs() {
  const dirs = ['core/trainer'];
  for (const group of ['core', 'plugins', 'presets']) {
    const g = join(root, group);
    if (!existsSync(g)) continue;
    for (const name of readdirSync(g).sort()) if (`${group}/${name}` !== 'core/trainer') dirs.push(`${group}/${name}`);
  }
  dirs.push('test');
  return dirs.filter((d) => existsSync(join(root, d, 'package.json')));
}

export function tsProjects() {
  return packageDirs().filter((d) => existsSync(join(root, d, 'tsconfig.json')));
}

export function readPackage(dir) {
  return JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8'));
}
