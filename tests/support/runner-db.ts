// A fresh database per test file on the host Postgres, so files never see each other's rows.
import pg from 'pg';
import { runRunner } from './runner-process.ts';

/** Creates (or re-creates) database `name` on the server of `serverUrl`; returns its URL. */
export async function freshDatabase(serverUrl: string, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    const quoted = pg.escapeIdentifier(name);
    await admin.query(`DROP DATABASE IF EXISTS ${quoted} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${quoted}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.href;
}

/** Runs `task-runner migrate` against `databaseUrl`; throws with its output unless it exits 0. */
export async function migrated(databaseUrl: string): Promise<string> {
  const exit = await runRunner(['migrate'], { DATABASE_URL: databaseUrl });
  if (exit.code !== 0) throw new Error(`migrate exited ${exit.code}:\n${exit.stdout}\n${exit.stderr}`);
  return databaseUrl;
}

/** A pg pool for a test's own reads and writes; end it in afterAll. */
export function testPool(databaseUrl: string): pg.Pool {
  return new pg.Pool({ connectionString: databaseUrl, max: 3 });
}
