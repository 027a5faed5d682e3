import type { Logger } from 'pino';
import type { Redis } from 'ioredis';

/**
 * A connected Redis client (ioredis is imported here, on demand). ioredis rejects a failed
 * connect with a bare "Connection is closed.", so the socket error seen on the way is kept
 * as the cause.
 */
export async function connectRedis(url: string, options: { connectTimeoutMs: number; log: Logger }): Promise<Redis> {
  // ioredis is CommonJS: `default` is its module.exports (the client class, carrying `.Redis` too).
  const { default: ioredis } = await import('ioredis');
  const client = new ioredis.Redis(url, {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs,
    maxRetriesPerRequest: 1,
    // A short-lived run reconnects a few times after a drop, then fails and leaves the retry to the operator.
    retryStrategy: (times) => (times <= 3 ? times * 200 : null),
  });
  let lastError: Error | undefined;
  client.on('error', (err: Error) => {
    lastError = err;
    options.log.debug({ err }, 'redis connection error');
  });
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    const where = new URL(url);
    throw new Error(`redis at ${where.hostname}:${where.port || 6379} is unreachable`, { cause: lastError ?? err });
  }
  return client;
}
