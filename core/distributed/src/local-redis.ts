import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** A throwaway redis-server for tests and benchmarks: 127.0.0.1, a free port, a temp dir, AOF, noeviction. */
export interface LocalRedis {
  port: number;
  /** redis://[:password@]127.0.0.1:PORT */
  url: string;
  dir: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface LocalRedisOptions {
  password?: string;
  bin?: string;
  args?: string[];
  /** Serve TLS only (rediss://) with these PEM files; clients are not asked for certificates. */
  tls?: { cert: string; key: string; ca: string };
}

export async function startLocalRedis(opts: LocalRedisOptions = {}): Promise<LocalRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tricks-redis-'));
  const listen = opts.tls
    ? [
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--tls-cert-file',
        opts.tls.cert,
        '--tls-key-file',
        opts.tls.key,
        '--tls-ca-cert-file',
        opts.tls.ca,
        '--tls-auth-clients',
        'no',
      ]
    : ['--port', String(port)];
  const args = [
    ...listen,
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'yes',
    '--maxmemory-policy',
    'noeviction',
    '--daemonize',
    'no',
    ...(opts.args ?? []),
  ];
  if (opts.password) args.push('--requirepass', opts.password);
  const proc = spawn(opts.bin ?? 'redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout!.on('data', (d) => (log += d));
  proc.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      proc.once('error', reject);
      proc.once('exit', (code) => reject(new Error(`redis-server exited with code ${code}: ${log.slice(-2000)}`)));
      const deadline = Date.now() + 15_000;
      const tryPing = async () => {
        const tls = opts.tls ? { ca: readFileSync(opts.tls.ca) } : undefined;
        const c = new Redis({
          host: '127.0.0.1',
          port,
          password: opts.password,
          tls,
          lazyConnect: true,
          retryStrategy: () => null,
          maxRetriesPerRequest: 0,
        });
        c.on('error', () => {});
        try {
          await c.connect();
          await c.ping();
          c.disconnect();
          resolve();
        } catch {
          c.disconnect();
          if (Date.now() > deadline) reject(new Error(`redis-server did not answer on port ${port}: ${log.slice(-2000)}`));
          else setTimeout(tryPing, 100);
        }
      };
      void tryPing();
    });
  } catch (e) {
    await stop();
    throw e;
  }
  const auth = opts.password ? `:${encodeURIComponent(opts.password)}@` : '';
  return { port, url: `${opts.tls ? 'rediss' : 'redis'}://${auth}127.0.0.1:${port}`, dir, process: proc, stop };
}
