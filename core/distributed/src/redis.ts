import { Redis } from 'ioredis';
import { TricksError } from '@tricks/core';
import { type QueueTarget, redact } from './url.js';

/**
 * Connects once to check that Redis answers, and that it keeps what BullMQ stores: with an
 * eviction policy other than noeviction Redis may drop job keys under memory pressure, and
 * without AOF a Redis restart loses the queue. Managed services that refuse CONFIG are let through.
 */
export async function checkRedis(target: QueueTarget, warn: (m: string) => void): Promise<void> {
  const client = new Redis({
    ...target.connection,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
    connectTimeout: 10_000,
  });
  // ioredis rejects with a generic "Connection is closed"; the cause (a TLS or DNS error) comes as an event.
  let cause: Error | undefined;
  client.on('error', (e: Error) => (cause ??= e));
  try {
    await client.connect();
    await client.ping();
  } catch (e) {
    client.disconnect();
    const why = cause && cause.message !== (e as Error).message ? `${(e as Error).message} (${cause.message})` : (e as Error).message;
    throw new TricksError(
      `cannot reach Redis at ${target.display}: ${redact(why, target.secrets)}`,
      'check the host, port, password and TLS (rediss://) of --queue, and that redis-server runs there',
    );
  }
  try {
    const [, policy] = (await client.config('GET', 'maxmemory-policy')) as string[];
    if (policy && policy !== 'noeviction')
      warn(`Redis at ${target.display} has maxmemory-policy ${policy}: it may evict queued jobs; set maxmemory-policy noeviction`);
    const [, aof] = (await client.config('GET', 'appendonly')) as string[];
    if (aof === 'no') warn(`Redis at ${target.display} has appendonly no: a Redis restart loses the queue; set appendonly yes`);
  } catch {
    /* CONFIG is disabled on many managed services */
  } finally {
    client.disconnect();
  }
}
