// `task-runner migrate` against the host Postgres: idempotent, and safe when two run at once.
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freshDatabase, testPool } from '../support/runner-db.ts';
import { closedPort } from '../support/runner-net.ts';
import { buildRunner, runRunner, type RunnerExit } from '../support/runner-process.ts';

// Every file in task-runner/migrations, in order (tasks add theirs).
const MIGRATIONS = readdirSync(resolve(import.meta.dirname, '../../task-runner/migrations'))
  .filter((f) => f.endsWith('.sql'))
  .map((f) => f.replace(/\.sql$/, ''))
  .sort();
const TABLES = ['ai_tasks', 'calendar_events', 'notifications', 'notion_pages', 'pgmigrations', 'task_runs', 'user_sessions', 'users'];

// node-pg-migrate's well-known advisory lock id (PG_MIGRATE_LOCK_ID in its runner).
const PG_MIGRATE_LOCK_ID = '7241865325823964';

const applied = (exit: RunnerExit) => (JSON.parse(exit.stdout.trim().split('\n').at(-1)!) as { applied: string[] }).applied;

beforeAll(() => buildRunner());

async function tablesOf(url: string): Promise<{ tables: string[]; recorded: string[] }> {
  const pool = testPool(url);
  try {
    const tables = await pool.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
    const recorded = await pool.query<{ name: string }>('SELECT name FROM pgmigrations ORDER BY id');
    return { tables: tables.rows.map((r) => r.t), recorded: recorded.rows.map((r) => r.name) };
  } finally {
    await pool.end();
  }
}

describe('migrate', () => {
  let sequential: string;
  let concurrent: string;
  beforeAll(async () => {
    sequential = await freshDatabase(inject('pgUrl'), 'runner_migrate_seq');
    concurrent = await freshDatabase(inject('pgUrl'), 'runner_migrate_par');
  });
  afterAll(async () => {
    // Leave the server as found.
    await freshDatabase(inject('pgUrl'), 'runner_migrate_seq');
    await freshDatabase(inject('pgUrl'), 'runner_migrate_par');
  });

  it('applies every migration once, then nothing on the second run', async () => {
    const first = await runRunner(['migrate'], { DATABASE_URL: sequential });
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(applied(first)).toEqual(MIGRATIONS);
    const second = await runRunner(['migrate'], { DATABASE_URL: sequential });
    expect(second.code).toBe(0);
    expect(applied(second)).toEqual([]);
    const after = await tablesOf(sequential);
    expect(after.tables).toEqual(expect.arrayContaining(TABLES));
    expect(after.recorded).toEqual(MIGRATIONS);
  });

  it('is safe when two run at once: one applies, the other waits and finds nothing to do', async () => {
    // Hold node-pg-migrate's advisory lock so that both runs are surely in flight together.
    const holder = testPool(concurrent);
    const lock = await holder.connect();
    try {
      await lock.query('SELECT pg_advisory_lock($1)', [PG_MIGRATE_LOCK_ID]);
      const both = Promise.all([runRunner(['migrate'], { DATABASE_URL: concurrent }), runRunner(['migrate'], { DATABASE_URL: concurrent })]);
      await waitUntil(async () => {
        const { rows } = await holder.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'",
        );
        return rows[0]!.n === 2;
      });
      await lock.query('SELECT pg_advisory_unlock($1)', [PG_MIGRATE_LOCK_ID]);
      const [a, b] = await both;
      expect([a.code, b.code], a.stdout + a.stderr + b.stdout + b.stderr).toEqual([0, 0]);
      expect([applied(a), applied(b)].sort((x, y) => y.length - x.length)).toEqual([MIGRATIONS, []]);
    } finally {
      lock.release();
      await holder.end();
    }
    const after = await tablesOf(concurrent);
    expect(after.tables).toEqual(expect.arrayContaining(TABLES));
    expect(after.recorded).toEqual(MIGRATIONS);
  });

  it('exits 2 without DATABASE_URL and 1 when Postgres is down', async () => {
    const missing = await runRunner(['migrate']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('migrate requires DATABASE_URL');
    const port = await closedPort();
    const down = await runRunner(['migrate'], { DATABASE_URL: `postgres://postgres:x@127.0.0.1:${port}/postgres` });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(new RegExp(`migrating the database with .*migrations failed: .*ECONNREFUSED 127.0.0.1:${port}`));
  });
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
