import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { TricksError } from '@tricks/core';

/** ioredis connection options built from a queue URL (what BullMQ's `connection` takes). */
export interface RedisConnectionOptions {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls?: { ca?: Buffer; servername?: string };
  /** BullMQ requires null: a blocked command must wait, not fail after N retries. */
  maxRetriesPerRequest: null;
  /** Name shown by CLIENT LIST on the Redis side. */
  connectionName?: string;
}

export interface QueueTarget {
  connection: RedisConnectionOptions;
  /** The URL with its password replaced by ***: the only form that may be printed or stored. */
  display: string;
  /** Strings that must never appear in logs, results or reports. */
  secrets: string[];
}

/**
 * Parses `redis://[user[:password]@]host[:port][/db]` or `rediss://...` (TLS). A password can
 * also come from the environment (TRICKS_REDIS_PASSWORD) so that it does not show in `ps`; a
 * private CA for rediss:// from TRICKS_REDIS_CA (a PEM file).
 */
export function parseQueueUrl(raw: string, env: NodeJS.ProcessEnv = process.env): QueueTarget {
  let u: URL;
  const bad = (why: string) =>
    new TricksError(
      `--queue ${redactUrl(raw)}: ${why}`,
      'give a Redis URL such as redis://HOST:6379, redis://:PASSWORD@HOST:6379/0 or rediss://HOST:6380 (TLS)',
    );
  try {
    u = new URL(raw);
  } catch {
    throw bad('not a URL');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw bad(`unsupported scheme "${u.protocol.replace(/:$/, '')}"`);
  if (!u.hostname) throw bad('no host');
  const port = u.port ? Number(u.port) : 6379;
  const dbText = u.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0) throw bad(`"${dbText}" is not a database number`);
  const username = u.username ? decodeURIComponent(u.username) : undefined;
  const password = u.password ? decodeURIComponent(u.password) : env.TRICKS_REDIS_PASSWORD || undefined;
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const connection: RedisConnectionOptions = { host, port, db, maxRetriesPerRequest: null };
  if (username) connection.username = username;
  if (password) connection.password = password;
  if (u.protocol === 'rediss:') {
    // SNI takes a host name only (RFC 6066); an IP address is checked against the certificate's IP SANs.
    connection.tls = isIP(host) ? {} : { servername: host };
    if (env.TRICKS_REDIS_CA) {
      try {
        connection.tls.ca = readFileSync(env.TRICKS_REDIS_CA);
      } catch (e) {
        throw new TricksError(
          `TRICKS_REDIS_CA=${env.TRICKS_REDIS_CA}: ${(e as Error).message}`,
          'point it at the PEM file of the CA that signed the Redis server certificate',
        );
      }
    }
  }
  const secrets = [password, u.password, password && encodeURIComponent(password)].filter((s): s is string => Boolean(s) && s!.length >= 1);
  return { connection, display: redactUrl(raw), secrets: [...new Set(secrets)] };
}

/** The URL with its password (if any) replaced by ***. Never throws: unparsable input is redacted wholesale after the scheme. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    // user:pass@ in something that is not a URL: hide everything between "//" and "@".
    return raw.replace(/(\/\/)[^@/]*@/, '$1***@');
  }
}

/** Replaces every secret (and any user:password@ in a URL) in a text before it is printed or stored. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text.replace(/(rediss?:\/\/[^:@/\s]*:)[^@\s]*@/gi, '$1***@');
  for (const s of secrets) if (s) out = out.split(s).join('***');
  return out;
}
