import type { Logger } from 'pino';
import type { Pool, PoolClient } from 'pg';

/**
 * A small Postgres pool (pg is imported here, on demand, so tasks without Postgres never
 * load it). The pool connects on first query.
 */
export async function openPostgres(url: string, options: { connectTimeoutMs: number; applicationName: string; log: Logger }): Promise<Pool> {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({
    connectionString: url,
    max: 4,
    connectionTimeoutMillis: options.connectTimeoutMs,
    application_name: options.applicationName.slice(0, 63),
  });
  // An idle client losing its connection emits here; without a listener it would crash the process.
  pool.on('error', (err) => options.log.warn({ err }, 'idle postgres connection failed'));
  return pool;
}

export interface TransactionOptions {
  /** The transaction's isolation level; Postgres's default (read committed) when unset. */
  isolation?: 'read committed' | 'repeatable read' | 'serializable';
  readOnly?: boolean;
  /** Told when the ROLLBACK after an error fails too (the error thrown is still the first one). */
  log?: Pick<Logger, 'warn'>;
}

/** The statement that opens a transaction with these options, e.g. `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`. */
export function beginStatement(options: TransactionOptions = {}): string {
  return ['BEGIN', options.isolation && `ISOLATION LEVEL ${options.isolation.toUpperCase()}`, options.readOnly && 'READ ONLY'].filter(Boolean).join(' ');
}

/**
 * Runs `fn` in one transaction on one client of the pool: BEGIN, `fn(client)`, COMMIT, and its
 * result back. Whatever `fn` (or BEGIN, or COMMIT) throws is rethrown as it is, cause and all,
 * after a ROLLBACK; a ROLLBACK that fails too does not replace it: it is logged, and that
 * connection, in a state nobody knows, is closed instead of going back to the pool. The client
 * is released in every case. `fn` must use the client it is given, not the pool.
 */
export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(beginStatement(options));
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackErr) {
      broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
      options.log?.warn({ err: broken }, 'ROLLBACK failed after an error in a transaction; its connection is closed');
    }
    throw err;
  } finally {
    // release(error) destroys the connection rather than pooling it.
    client.release(broken);
  }
}
