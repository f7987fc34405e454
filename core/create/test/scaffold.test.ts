import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHooks, TricksError, MemoryLogger, CORE_VERSION } from '@tricks/core';
import { parseName, scaffold } from '../src/scaffold.js';
import { testBackend, tiny, tmp as makeTmp, createTestTrainer } from './helpers.js';

/** Scratch directories of this file, removed after its tests (symlinks inside are removed, not followed). */
const made: string[] = [];
const tmp = (prefix?: string) => {
  const d = makeTmp(prefix);
  made.push(d);
  return d;
};
after(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

const coreDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const root = resolve(coreDir, '..', '..');
const bin = (pkg: string, file: string) => join(root, 'node_modules', pkg, file);
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

/** Runs a tool of the workspace (tsc, mocha, the tricks CLI) with node. */
function run(script: string, args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [script, ...args], { cwd, encoding: 'utf8', timeout: 300000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Links the workspace's node_modules into a scaffolded package: what `npm install` gives it, offline. */
function linkDeps(dir: string): void {
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
}

describe('tricks new', function () {
  this.timeout(300000);

  it('derives the short name and the package name as the resolver does', () => {
    expect(parseName('z-loss', 'plugin')).to.deep.equal({ name: 'z-loss', packageName: 'tricks-plugin-z-loss' });
    expect(parseName('tricks-plugin-z-loss', 'plugin')).to.deep.equal({ name: 'z-loss', packageName: 'tricks-plugin-z-loss' });
    expect(parseName('@tricks/plugin-mixup', 'plugin')).to.deep.equal({ name: 'mixup', packageName: '@tricks/plugin-mixup' });
    expect(parseName('@acme/tricks-plugin-lion', 'plugin')).to.deep.equal({ name: 'lion', packageName: '@acme/tricks-plugin-lion' });
    expect(parseName('recipe', 'preset')).to.deep.equal({ name: 'recipe', packageName: 'tricks-preset-recipe' });
    for (const bad of ['Z Loss', '', 'a/b', '-x']) expect(() => parseName(bad, 'plugin'), bad).to.throw(TricksError, /plugin name/);
  });

  it('writes a plugin package ready to publish: peerDependency, exports, types, files, keyword, schema, README, tests', () => {
    const cwd = tmp('tricks-new-');
    const s = scaffold({ kind: 'plugin', name: 'z-loss', cwd });
    expect(s.dir).to.equal(join(cwd, 'tricks-plugin-z-loss'));
    expect(s.shortNameResolves).to.equal(true);
    const pkg = readJson(join(s.dir, 'package.json'));
    expect(pkg.name).to.equal('tricks-plugin-z-loss');
    expect(pkg.type).to.equal('module');
    expect(pkg.keywords).to.include('tricks-plugin');
    expect(pkg.peerDependencies['@tricks/core']).to.equal(`^${CORE_VERSION}`);
    expect(pkg.peerDependencies['@tensorflow/tfjs-core']).to.equal(
      readJson(join(root, 'core', 'trainer', 'package.json')).dependencies['@tensorflow/tfjs-core'],
    );
    expect(pkg.exports['.']).to.deep.equal({ types: './dist/src/index.d.ts', default: './dist/src/index.js' });
    expect(pkg.types).to.equal('./dist/src/index.d.ts');
    expect(pkg.files).to.deep.equal(['dist/src', 'README.md']);
    expect(Object.keys(pkg.devDependencies)).to.include.members([
      '@tricks/core',
      '@tricks/helper-plugin-test-runner',
      'typescript',
      'mocha',
      'chai',
    ]);
    const src = readFileSync(join(s.dir, 'src', 'index.ts'), 'utf8');
    expect(src).to.match(/additionalProperties: false/);
    expect(src.match(/api\.hooks\.\w+\.tap\w*\(\{ name: PLUGIN_NAME, stage: STAGE_\w+ \}/g)).to.have.length(2);
    expect(readFileSync(join(s.dir, 'test', 'index.test.ts'), 'utf8')).to.match(/from '@tricks\/helper-plugin-test-runner'/);
    expect(readFileSync(join(s.dir, 'README.md'), 'utf8')).to.match(/## Options[\s\S]*\| weight \|/);
    expect(readdirSync(cwd)).to.deep.equal(['tricks-plugin-z-loss']); // no temp dir left behind
  });

  it('@tricks/* dependencies: ranges in an npm workspace or with --deps registry; outside, packed tarballs named by file: specs', () => {
    // Inside a workspace (a stand-in for this repository's plugins/): the root's npm install links them.
    const ws = tmp('tricks-ws-');
    writeFileSync(join(ws, 'package.json'), JSON.stringify({ name: 'ws', private: true, workspaces: ['plugins/*', 'packages/**'] }));
    for (const at of ['plugins', 'packages/a/b']) {
      const w = scaffold({ kind: 'plugin', name: 'w', dir: join(at, 'w'), cwd: ws });
      expect(w.deps, at).to.equal('workspace');
      expect(w.workspaceRoot).to.equal(ws);
      expect(readJson(join(w.dir, 'package.json')).devDependencies['@tricks/core']).to.equal(`^${CORE_VERSION}`);
      expect(existsSync(join(w.dir, 'vendor')), at).to.equal(false);
    }
    expect(scaffold({ kind: 'plugin', name: 'w', dir: 'elsewhere/w', cwd: ws }).deps).to.equal('tarballs'); // not matched by a glob
    // --deps registry: plain ranges, nothing packed.
    const cwd = tmp('tricks-new-');
    const r = scaffold({ kind: 'plugin', name: 'r', cwd, deps: 'registry' });
    expect(r.deps).to.equal('registry');
    const rpkg = readJson(join(r.dir, 'package.json'));
    expect(rpkg.devDependencies['@tricks/helper-plugin-test-runner']).to.match(/^\^\d/);
    expect(Object.keys(rpkg.devDependencies).filter((k) => k.startsWith('@tricks/'))).to.deep.equal([
      '@tricks/core',
      '@tricks/helper-plugin-test-runner',
    ]);
    expect(existsSync(join(r.dir, 'vendor'))).to.equal(false);
    // Outside, from this checkout: core, the runner and every @tricks/* package they need, packed.
    const t = scaffold({ kind: 'plugin', name: 't', cwd });
    expect(t.deps).to.equal('tarballs');
    const tpkg = readJson(join(t.dir, 'package.json'));
    const needed = [
      '@tricks/core',
      '@tricks/helper-plugin-test-runner',
      ...Object.keys(readJson(join(root, 'core', 'helper-plugin-test-runner', 'package.json')).dependencies),
    ];
    expect(Object.keys(t.tarballs)).to.include.members(needed);
    for (const [name, spec] of Object.entries(t.tarballs)) {
      expect(tpkg.devDependencies[name], name).to.equal(spec);
      expect(existsSync(join(t.dir, spec.slice('file:'.length))), spec).to.equal(true);
      expect(t.files).to.include(spec.slice('file:'.length));
    }
    expect(tpkg.peerDependencies['@tricks/core']).to.equal(`^${CORE_VERSION}`);
    expect(readFileSync(join(t.dir, '.gitignore'), 'utf8')).to.match(/^\*\.tgz\n(#.*\n)?!vendor\/tricks\/\*\.tgz$/m); // a clone has them too
    expect(tpkg.overrides).to.deep.equal(
      Object.fromEntries(
        Object.keys(t.tarballs)
          .sort()
          .map((k) => [k, `$${k}`]),
      ),
    );
    // A preset's plugin is a dependency: packed too.
    const p = scaffold({ kind: 'preset', name: 'p', cwd });
    expect(readJson(join(p.dir, 'package.json')).dependencies['@tricks/plugin-label-smoothing']).to.match(
      /^file:vendor\/tricks\/tricks-plugin-label-smoothing-.+\.tgz$/,
    );
  });

  it('refuses a non-empty directory and leaves it as it was; --force replaces only its own files', () => {
    const cwd = tmp('tricks-new-');
    const dir = join(cwd, 'mine');
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'keep me');
    expect(() => scaffold({ kind: 'plugin', name: 'x', dir: 'mine', cwd })).to.throw(
      TricksError,
      /mine already exists and is not empty[\s\S]*--force/,
    );
    expect(readdirSync(dir)).to.deep.equal(['notes.txt']);
    expect(readdirSync(cwd)).to.deep.equal(['mine']);
    scaffold({ kind: 'plugin', name: 'x', dir: 'mine', cwd, force: true });
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).to.equal('keep me');
    expect(readJson(join(dir, 'package.json')).name).to.equal('tricks-plugin-x');
    expect(readdirSync(cwd)).to.deep.equal(['mine']);
  });

  it('the CLI prints the files and the next steps, and a bad name as one clear error', () => {
    const cwd = tmp('tricks-new-');
    const tricks = join(root, 'core', 'cli', 'bin', 'tricks.js');
    const ok = run(tricks, ['new', 'plugin', '@acme/tricks-plugin-lion', '--description', "Lion's optimizer"], cwd);
    expect(ok.code, ok.out).to.equal(0);
    expect(ok.out).to.match(/created plugin @acme\/tricks-plugin-lion in tricks-plugin-lion\//);
    expect(ok.out).to.match(/npm publish/);
    expect(ok.out).to.match(
      /tarballs were packed from this installation into tricks-plugin-lion\/vendor\/tricks\/ \(@tricks\/core, @tricks\/helper-plugin-test-runner, /,
    );
    const reg = run(tricks, ['new', 'plugin', 'reg', '--deps', 'registry'], cwd);
    expect(reg.code, reg.out).to.equal(0);
    expect(reg.out).to.match(/@tricks\/\* dependencies: version ranges, installed from your npm registry/);
    const badDeps = run(tricks, ['new', 'plugin', 'x', '--deps', 'somewhere'], cwd);
    expect(badDeps.code).to.not.equal(0);
    expect(badDeps.out).to.match(/--deps <source>' argument 'somewhere' is invalid/);
    expect(ok.out).to.match(/is not named @tricks\/plugin-lion or tricks-plugin-lion, so a config names it by its package name/);
    expect(readFileSync(join(cwd, 'tricks-plugin-lion', 'src', 'index.ts'), 'utf8')).to.include("description: 'Lion\\'s optimizer'");
    const bad = run(tricks, ['new', 'plugin', 'Not Valid'], cwd);
    expect(bad.code).to.equal(1);
    expect(bad.out).to.match(/^error: plugin name "Not Valid": not a valid npm package name part/m);
    expect(bad.out).to.not.match(/^\s+at /m);
  });

  it('a scaffolded plugin builds, passes its own tests with the shared runner, and trains by its short name', async () => {
    const cwd = tmp('tricks-new-');
    const s = scaffold({ kind: 'plugin', name: 'z-loss', cwd });
    linkDeps(s.dir);
    const build = run(bin('typescript', 'bin/tsc'), ['-p', '.'], s.dir);
    expect(build.code, build.out).to.equal(0);
    expect(existsSync(join(s.dir, 'dist', 'src', 'index.d.ts'))).to.equal(true);
    const test = run(bin('mocha', 'bin/mocha.js'), ['dist/test/**/*.test.js'], s.dir);
    expect(test.code, test.out).to.equal(0);
    expect(test.out).to.match(/3 passing/);

    // A user's project with the package installed (linked): `plugins: ["z-loss"]` finds tricks-plugin-z-loss.
    const user = tmp('tricks-user-');
    writeFileSync(join(user, 'package.json'), '{"name":"user","private":true,"type":"module"}');
    mkdirSync(join(user, 'node_modules'));
    symlinkSync(s.dir, join(user, 'node_modules', 'tricks-plugin-z-loss'), 'dir');
    await testBackend();
    const trainer = await createTestTrainer(tiny({ plugins: [['z-loss', { weight: 0.001 }]] }), { logger: new MemoryLogger(), cwd: user });
    expect(trainer.config.plugins[0].source).to.equal('tricks-plugin-z-loss');
    const result = await trainer.run();
    expect(result.epochs[0]['z-loss']).to.be.greaterThan(0);
    expect(trainer.ctx.lastTerms['z-loss']).to.equal(result.epochs[0]['z-loss']);
  });

  it('a scaffolded preset builds and passes its own tests with the shared runner', () => {
    const cwd = tmp('tricks-new-');
    const s = scaffold({ kind: 'preset', name: 'recipe', cwd });
    const pkg = readJson(join(s.dir, 'package.json'));
    expect(pkg.keywords).to.include('tricks-preset');
    expect(pkg.dependencies).to.have.property('@tricks/plugin-label-smoothing');
    linkDeps(s.dir);
    const build = run(bin('typescript', 'bin/tsc'), ['-p', '.'], s.dir);
    expect(build.code, build.out).to.equal(0);
    const test = run(bin('mocha', 'bin/mocha.js'), ['dist/test/**/*.test.js'], s.dir);
    expect(test.code, test.out).to.equal(0);
    expect(test.out).to.match(/1 passing/);
  });

  it('docs/writing-a-plugin.md documents every hook: a table row and an example tap', () => {
    const doc = readFileSync(join(root, 'docs', 'writing-a-plugin.md'), 'utf8');
    for (const hook of Object.keys(createHooks())) {
      expect(doc, hook).to.match(new RegExp(`^\\| \`${hook}\` \\| \\w+Hook \\|`, 'm'));
      expect(doc, hook).to.match(new RegExp(`^### ${hook}\\n+\`\`\`ts\\napi\\.hooks\\.${hook}\\.tap(Promise)?\\(`, 'm'));
    }
  });
});
