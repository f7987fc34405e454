/**
 * A third-party plugin the way a user meets it, through a real npm registry (Verdaccio on 127.0.0.1):
 * publish every non-private core/* package (packed from this repository, in dependency order); scaffold
 * a plugin with `tricks new plugin --deps registry`, install its dev dependencies from the registry,
 * build it, run its tests (the shared runner) and publish it; then, in a fresh project whose .npmrc
 * points at the registry only, install @tricks/cli and the plugin, name the plugin by its short name in
 * a config file, train a few steps with the CLI and check that the plugin's hooks ran; and in a second
 * fresh project install only @tricks/core and the plugin and count the installed packages (at most 40).
 * Everything else comes through Verdaccio's uplink to the registry npm uses here. The server is stopped
 * at the end, also on failure.
 */
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tricksCli = join(root, 'core', 'cli', 'bin', 'tricks.js');
const PLUGIN = 'zloss-e2e';
const PACKAGE = `tricks-plugin-${PLUGIN}`;

/** The environment for npm: without the npm_* variables of an outer `npm test`, which would override the .npmrc files. */
function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
}

/** Runs a command, appending its output to `log`; rejects with the tail of the output when it fails. */
const timings: string[] = [];

function sh(cmd: string, args: string[], cwd: string, log: string, timeoutMs = 600000): Promise<string> {
  appendFileSync(log, `\n$ (${cwd}) ${cmd} ${args.join(' ')}\n`);
  const t0 = performance.now();
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { cwd, env: npmEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (d: Buffer) => {
      out += d;
      appendFileSync(log, d);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const what = `${cmd === process.execPath ? 'node' : cmd} ${args
        .filter((a) => !a.startsWith('/'))
        .slice(0, 3)
        .join(' ')}`;
      timings.push(`${what} (${cwd.split('/').pop()}): ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      if (code === 0) res(out);
      else rej(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}) in ${cwd}:\n${out.slice(-3000)}`));
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/** The registry npm itself uses on this machine: Verdaccio's uplink. */
function upstreamRegistry(): string {
  const r = spawnSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8', env: npmEnv() });
  const url = r.stdout?.trim();
  return url && /^https?:\/\//.test(url) ? url : 'https://registry.npmjs.org/';
}

function verdaccioConfig(work: string, upstream: string): string {
  return `# Written by test/registry.test.ts
storage: ${join(work, 'storage')}
auth:
  htpasswd:
    file: ${join(work, 'htpasswd')}
    max_users: 10
uplinks:
  npmjs:
    url: ${upstream}
    timeout: 120s
    maxage: 30m
packages:
  # Our packages are served from this registry only (never proxied), so what the test installs is what it published.
  '@tricks/*':
    access: $all
    publish: $authenticated
  'tricks-*':
    access: $all
    publish: $authenticated
  '**':
    access: $all
    publish: $authenticated
    proxy: npmjs
max_body_size: 200mb
server:
  keepAliveTimeout: 60
log: { type: stdout, format: pretty, level: warn }
`;
}

/** The non-private packages under core/, each after the @tricks/* packages it depends on. */
function publishOrder(): { dir: string; name: string }[] {
  const pkgs = readdirSync(join(root, 'core'))
    .map((d) => `core/${d}`)
    .filter((dir) => existsSync(join(root, dir, 'package.json')))
    .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) }))
    .filter(({ pkg }) => !pkg.private);
  const byName = new Map(pkgs.map((p) => [p.pkg.name as string, p]));
  const done: { dir: string; name: string }[] = [];
  const visiting = new Set<string>();
  const visit = (name: string) => {
    if (done.some((d) => d.name === name) || !byName.has(name)) return;
    if (visiting.has(name)) throw new Error(`dependency cycle through ${name}`);
    visiting.add(name);
    const { dir, pkg } = byName.get(name)!;
    for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies'])
      for (const dep of Object.keys(pkg[field] ?? {})) visit(dep);
    done.push({ dir, name });
  };
  for (const name of [...byName.keys()].sort()) visit(name);
  return done;
}

describe('a third-party plugin through a real npm registry (Verdaccio)', function () {
  this.timeout(20 * 60000);
  let server: ChildProcess | undefined;
  let serverLog = '';
  let work = '';
  let registry = '';
  let log = '';
  let passed = false;
  const killOnExit = () => server?.kill('SIGKILL');

  before(async function () {
    this.timeout(120000);
    let bin: string;
    try {
      const pkgFile = createRequire(import.meta.url).resolve('verdaccio/package.json');
      const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
      bin = join(dirname(pkgFile), typeof pkg.bin === 'string' ? pkg.bin : pkg.bin.verdaccio);
    } catch (e) {
      console.log(
        `    SKIPPED: verdaccio cannot start: it is not installed (${(e as Error).message.split('\n')[0]}); run npm install at the repository root`,
      );
      this.skip();
    }
    work = mkdtempSync(join(tmpdir(), 'tricks-registry-'));
    log = join(work, 'commands.log');
    const port = await freePort();
    registry = `http://127.0.0.1:${port}/`;
    writeFileSync(join(work, 'config.yaml'), verdaccioConfig(work, upstreamRegistry()));
    server = spawn(process.execPath, [bin!, '--config', join(work, 'config.yaml'), '--listen', `127.0.0.1:${port}`], {
      cwd: work,
      env: npmEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    process.once('exit', killOnExit);
    let exited: string | undefined;
    server.on('exit', (code, signal) => (exited = `exited with ${signal ?? code}`));
    server.stdout!.on('data', (d) => (serverLog += d));
    server.stderr!.on('data', (d) => (serverLog += d));
    const deadline = Date.now() + 60000;
    for (;;) {
      try {
        const r = await fetch(`${registry}-/ping`);
        if (r.ok) break;
      } catch {
        /* not up yet */
      }
      if (exited || Date.now() > deadline) {
        console.log(`    SKIPPED: verdaccio cannot start: ${exited ?? 'no answer on /-/ping within 60 s'}\n${serverLog.slice(-2000)}`);
        this.skip();
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  });

  after(async function () {
    this.timeout(300000);
    if (timings.length) console.log(`    timings: ${timings.join('; ')}`);
    process.off('exit', killOnExit);
    if (server && server.exitCode === null && server.signalCode === null) {
      const gone = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      const timer = setTimeout(() => server!.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    }
    if (work && passed) await rm(work, { recursive: true, force: true });
    else if (work) console.log(`    kept ${work} (commands.log, the scaffolded plugin, the project) for inspection`);
  });

  it('scaffolds, builds, tests and publishes a plugin; a fresh project installs it from the registry and trains with it by short name', async () => {
    const host = registry.replace(/^http:/, '');
    // A user on the registry: publishing needs a token.
    const res = await fetch(`${registry}-/user/org.couchdb.user:e2e`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'e2e', password: 'e2e-password-not-secret' }),
    });
    expect(res.status, await res.clone().text()).to.be.oneOf([200, 201]);
    const { token } = (await res.json()) as { token: string };
    // No install scripts: the tricks packages need none (the native backends are optional), and some
    // dependencies' postinstall steps download from hosts other than the npm registry.
    const npmrc = (auth: boolean) =>
      `registry=${registry}\nignore-scripts=true\naudit=false\nfund=false\nupdate-notifier=false\n${auth ? `${host}:_authToken=${token}\n` : ''}`;

    // 1. Every package a user's app needs (core/*, less the private ones), packed from this repository
    // (built by `npm run build`) and published in dependency order.
    const order = publishOrder();
    console.log(`    publishing ${order.map((p) => p.name).join(', ')}`);
    for (const { dir } of order)
      expect(existsSync(join(root, dir, 'dist', 'src', 'index.js')), `${dir} is not built: run npm run build`).to.equal(true);
    const packs = join(work, 'packs');
    mkdirSync(packs);
    writeFileSync(join(work, '.npmrc'), npmrc(true));
    writeFileSync(join(work, 'package.json'), '{"name":"registry-work","private":true}');
    const packOut = await sh(
      'npm',
      ['pack', '--json', '--ignore-scripts', '--pack-destination', packs, ...order.map((p) => join(root, p.dir))],
      work,
      log,
    );
    const packed = JSON.parse(packOut.slice(packOut.indexOf('['), packOut.lastIndexOf(']') + 1)) as { name: string; filename: string }[];
    expect(packed.map((p) => p.name)).to.deep.equal(order.map((p) => p.name));
    for (const p of packed) await sh('npm', ['publish', join(packs, p.filename.replace(/^.*\//, ''))], work, log);

    // 2. Scaffold the plugin with the CLI (version ranges: a registry has the @tricks/* packages now);
    // install its dev dependencies from the registry, build it, run its tests (the shared runner), publish it.
    const pluginDir = join(work, 'plugin');
    const created = await sh(process.execPath, [tricksCli, 'new', 'plugin', PLUGIN, '--dir', pluginDir, '--deps', 'registry'], work, log);
    expect(created).to.match(new RegExp(`created plugin ${PACKAGE}`));
    expect(created).to.match(/@tricks\/\* dependencies: version ranges, installed from your npm registry/);
    writeFileSync(join(pluginDir, '.npmrc'), npmrc(true));
    await sh('npm', ['install', '--prefer-offline'], pluginDir, log);
    expect(
      realpathSync(join(pluginDir, 'node_modules', '@tricks', 'helper-plugin-test-runner')).startsWith(realpathSync(pluginDir)),
      'the runner is installed, not linked',
    ).to.equal(true);
    await sh('npm', ['run', 'build'], pluginDir, log);
    const tested = await sh('npm', ['test'], pluginDir, log);
    expect(tested).to.match(/3 passing/);
    await sh('npm', ['publish'], pluginDir, log);
    const meta = (await (await fetch(`${registry}${PACKAGE}`)).json()) as {
      versions: Record<string, { peerDependencies: Record<string, string>; keywords: string[] }>;
    };
    expect(meta.versions['0.1.0'].peerDependencies['@tricks/core']).to.match(/^\^\d+\.\d+\.\d+$/);
    expect(meta.versions['0.1.0'].keywords).to.include('tricks-plugin');

    // 3. A fresh project: its .npmrc points at the local registry only; it installs the CLI and the plugin.
    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'my-classifier', private: true, type: 'module' }, null, 2));
    writeFileSync(join(app, '.npmrc'), npmrc(false));
    const installLog = await sh('npm', ['install', '--prefer-offline', '--loglevel=http', '@tricks/cli', PACKAGE], app, log);
    for (const pkg of ['core', 'cli']) {
      expect(
        realpathSync(join(app, 'node_modules', '@tricks', pkg)).startsWith(realpathSync(app)),
        `@tricks/${pkg} is installed, not linked`,
      ).to.equal(true);
    }
    const installed = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'));
    expect(Object.keys(installed.dependencies).sort()).to.deep.equal(['@tricks/cli', PACKAGE]);
    // Every request npm made went to the local registry (cache hits are keyed by its URLs too).
    const urls = [...installLog.matchAll(/\bhttp (?:fetch \w+ \d+|cache) .*?(https?:\/\/\S+)/g)].map((m) => m[1]);
    expect(urls.length).to.be.greaterThan(10);
    expect(urls.filter((u) => !u.startsWith(registry))).to.deep.equal([]);

    // 4. The plugin by its short name in a config file; train a few steps with the CLI.
    writeFileSync(
      join(app, 'tricks.config.json'),
      JSON.stringify(
        {
          plugins: [[PLUGIN, { weight: 0.001 }]],
          data: 'digits',
          model: { name: 'small-cnn', options: { width: 8 } },
          epochs: 1,
          batchSize: 32,
          limit: { train: 256, val: 128, steps: 3 },
          checkpoint: false,
          backend: 'wasm',
        },
        null,
        2,
      ),
    );
    const appCli = join(app, 'node_modules', '@tricks', 'cli', 'bin', 'tricks.js');
    const listed = JSON.parse(await sh(process.execPath, [appCli, 'plugins', '--json'], app, log)) as {
      name: string;
      package: string;
      options: Record<string, { default?: unknown }>;
    }[];
    const entry = listed.find((p) => p.name === PLUGIN);
    expect(entry, JSON.stringify(listed)).to.not.equal(undefined);
    expect(entry!.package).to.equal(PACKAGE);
    expect(entry!.options.weight.default).to.equal(0.0001);
    const trained = await sh(process.execPath, [appCli, 'train', '--out', 'run'], app, log);

    // 5. The plugin's hooks ran: its loss term was minimized each step, and its epoch tap reported it.
    expect(trained).to.match(new RegExp(`plugins: ${PLUGIN}`));
    expect(trained).to.match(new RegExp(`${PLUGIN}: term \\d\\.\\d+e[-+]\\d+ at the end of epoch 1`));
    const run = JSON.parse(readFileSync(join(app, 'run', 'run.json'), 'utf8'));
    expect(run.config.plugins[0]).to.include({ name: PLUGIN, source: PACKAGE });
    expect(run.config.plugins[0].options).to.deep.equal({ weight: 0.001 });
    const term = run.result.epochs[0][PLUGIN];
    expect(term).to.be.a('number').and.greaterThan(0);
    expect(Number.isFinite(run.result.epochs[0].train_loss)).to.equal(true);

    // 6. A second fresh project with only @tricks/core and the plugin (a library user, no CLI): its
    // whole installed tree stays small.
    const lib = join(work, 'lib-app');
    mkdirSync(lib);
    writeFileSync(join(lib, 'package.json'), JSON.stringify({ name: 'my-library-use', private: true, type: 'module' }, null, 2));
    writeFileSync(join(lib, '.npmrc'), npmrc(false));
    await sh('npm', ['install', '--prefer-offline', '@tricks/core', PACKAGE], lib, log);
    const tree = (await sh('npm', ['ls', '--all', '--parseable'], lib, log))
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('/') && l !== lib);
    const names = tree.map((l) => l.slice(l.lastIndexOf('node_modules/') + 'node_modules/'.length)).sort();
    console.log(`    packages installed with @tricks/core and ${PACKAGE} alone: ${tree.length} (${names.join(', ')})`);
    expect(names).to.include.members(['@tricks/core', PACKAGE, '@tensorflow/tfjs-core']);
    expect(names.filter((n) => n.startsWith('@tricks/'))).to.deep.equal(['@tricks/core']);
    expect(tree.length, 'installed packages').to.be.at.most(40);
    passed = true;
  });
});
