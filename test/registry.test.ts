/**
 * A third-party plugin the way a user meets it, through a real npm registry (Verdaccio on 127.0.0.1):
 * scaffold it with `tricks new plugin`, build it and run its tests (the shared runner) against this
 * repository's packages, linked, and publish it next to @tricks/core and @tricks/helper-plugin-test-runner
 * (packed from this repository); then, in a fresh project whose .npmrc points at the registry only, install
 * @tricks/core and the plugin, name the plugin by its short name in a config file, train a few steps
 * with the CLI and check that the plugin's hooks ran. Everything else comes through Verdaccio's uplink
 * to the registry npm uses here. The server is stopped at the end, also on failure.
 */
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
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
      const what = `${cmd === process.execPath ? 'node' : cmd} ${args.filter((a) => !a.startsWith('/')).slice(0, 3).join(' ')}`;
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
      console.log(`    SKIPPED: verdaccio cannot start: it is not installed (${(e as Error).message.split('\n')[0]}); run npm install at the repository root`);
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
    const npmrc = (auth: boolean) => `registry=${registry}\nignore-scripts=true\naudit=false\nfund=false\nupdate-notifier=false\n${auth ? `${host}:_authToken=${token}\n` : ''}`;

    // 1. @tricks/core and the shared test runner, packed from this repository (built by `npm run build`) and published.
    for (const dir of ['core', 'core/helper-plugin-test-runner']) {
      expect(existsSync(join(root, dir, 'dist', 'src', 'index.js')), `${dir} is not built: run npm run build`).to.equal(true);
    }
    const packs = join(work, 'packs');
    mkdirSync(packs);
    writeFileSync(join(work, '.npmrc'), npmrc(true));
    writeFileSync(join(work, 'package.json'), '{"name":"registry-work","private":true}');
    for (const dir of ['core', 'core/helper-plugin-test-runner']) {
      const name = (await sh('npm', ['pack', '--silent', '--pack-destination', packs], join(root, dir), log)).trim().split('\n').pop()!;
      await sh('npm', ['publish', join(packs, name)], work, log);
    }

    // 2. Scaffold the plugin with the CLI; build it and run its tests against this repository's
    // packages, linked (what its `npm install` would give it: the full install is the one in step 3);
    // publish it.
    const pluginDir = join(work, 'plugin');
    const created = await sh(process.execPath, [tricksCli, 'new', 'plugin', PLUGIN, '--dir', pluginDir], work, log);
    expect(created).to.match(new RegExp(`created plugin ${PACKAGE}`));
    writeFileSync(join(pluginDir, '.npmrc'), npmrc(true));
    symlinkSync(join(root, 'node_modules'), join(pluginDir, 'node_modules'), 'dir');
    await sh('npm', ['run', 'build'], pluginDir, log);
    const tested = await sh('npm', ['test'], pluginDir, log);
    expect(tested).to.match(/3 passing/);
    unlinkSync(join(pluginDir, 'node_modules')); // (npm publish would walk the whole linked tree)
    await sh('npm', ['publish'], pluginDir, log);
    const meta = (await (await fetch(`${registry}${PACKAGE}`)).json()) as { versions: Record<string, { peerDependencies: Record<string, string>; keywords: string[] }> };
    expect(meta.versions['0.1.0'].peerDependencies['@tricks/core']).to.match(/^\^\d+\.\d+\.\d+$/);
    expect(meta.versions['0.1.0'].keywords).to.include('tricks-plugin');

    // 3. A fresh project: its .npmrc points at the local registry only.
    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'my-classifier', private: true, type: 'module' }, null, 2));
    writeFileSync(join(app, '.npmrc'), npmrc(false));
    const installLog = await sh('npm', ['install', '--prefer-offline', '--loglevel=http', '@tricks/core', PACKAGE], app, log);
    expect(realpathSync(join(app, 'node_modules', '@tricks', 'core')).startsWith(realpathSync(app)), '@tricks/core is installed, not linked').to.equal(true);
    const installed = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'));
    expect(Object.keys(installed.dependencies).sort()).to.deep.equal(['@tricks/core', PACKAGE]);
    // Every request npm made went to the local registry (cache hits are keyed by its URLs too).
    const urls = [...installLog.matchAll(/\bhttp (?:fetch \w+ \d+|cache) .*?(https?:\/\/\S+)/g)].map((m) => m[1]);
    expect(urls.length).to.be.greaterThan(10);
    expect(urls.filter((u) => !u.startsWith(registry))).to.deep.equal([]);

    // 4. The plugin by its short name in a config file; train a few steps with the CLI.
    writeFileSync(
      join(app, 'tricks.config.json'),
      JSON.stringify({
        plugins: [[PLUGIN, { weight: 0.001 }]],
        data: 'digits',
        model: { name: 'small-cnn', options: { width: 8 } },
        epochs: 1,
        batchSize: 32,
        limit: { train: 256, val: 128, steps: 3 },
        checkpoint: false,
        backend: 'wasm',
      }, null, 2),
    );
    const appCli = join(app, 'node_modules', '@tricks', 'cli', 'bin', 'tricks.js');
    const listed = JSON.parse(await sh(process.execPath, [appCli, 'plugins', '--json'], app, log)) as { name: string; package: string; options: Record<string, { default?: unknown }> }[];
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
    passed = true;
  });
});
