import type { Logger } from 'pino';
import type { Pool } from 'pg';

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
