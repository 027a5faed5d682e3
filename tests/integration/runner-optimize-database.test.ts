// maintenance.optimize-database as a process: a bloated table is vacuumed (pg_stat_user_tables
// shows it), a healthy one is left alone, identifiers are quoted, REINDEX replaces the indexes.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { freshDatabase, migrated, testPool } from '../support/runner-db.ts';
import { buildRunner, runRunner } from '../support/runner-process.ts';

const TASK = 'maintenance.optimize-database';
const WEIRD = 'Bloated "Quoted" Table';
let url: string;
let db: pg.Pool;

interface Stats {
  n_dead_tup: number;
  vacuum_count: number;
  last_vacuum: Date | null;
}

async function stats(table: string): Promise<Stats> {
  const { rows } = await db.query<Stats>(
    "SELECT n_dead_tup::int, vacuum_count::int, last_vacuum FROM pg_stat_user_tables WHERE schemaname = 'public' AND relname = $1",
    [table],
  );
  if (!rows[0]) throw new Error(`no statistics for ${table}`);
  return rows[0];
}

/** Statistics reach pg_stat_user_tables asynchronously (within about a second in Postgres 15). */
async function eventually(table: string, check: (s: Stats) => boolean): Promise<Stats> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const s = await stats(table);
    if (check(s)) return s;
    if (Date.now() > deadline) throw new Error(`statistics of ${table} never matched: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A table with `rows` rows of which `deadEvery - 1` in `deadEvery` are deleted; autovacuum off so only the task vacuums it. */
async function bloatedTable(name: string, rows: number, deadEvery: number): Promise<void> {
  const quoted = pg.escapeIdentifier(name);
  await db.query(`DROP TABLE IF EXISTS ${quoted}`);
  await db.query(`CREATE TABLE ${quoted} (id int PRIMARY KEY, payload text) WITH (autovacuum_enabled = false)`);
  await db.query(`CREATE INDEX ON ${quoted} (payload)`);
  await db.query(`INSERT INTO ${quoted} SELECT g, md5(g::text) FROM generate_series(1, $1) g`, [rows]);
  if (deadEvery > 1) await db.query(`DELETE FROM ${quoted} WHERE id % $1 <> 0`, [deadEvery]);
}

async function indexOids(table: string): Promise<number[]> {
  const { rows } = await db.query<{ oid: number }>(
    'SELECT indexrelid::int AS oid FROM pg_index WHERE indrelid = $1::regclass ORDER BY 1',
    [`public.${pg.escapeIdentifier(table)}`],
  );
  return rows.map((r) => r.oid);
}

beforeAll(async () => {
  buildRunner();
  url = await migrated(await freshDatabase(inject('pgUrl'), 'runner_optimize_database'));
  db = testPool(url);
});
afterAll(async () => {
  await db.end();
});

describe(TASK, () => {
  it('vacuums the tables over the dead-tuple threshold, and only those', async () => {
    await bloatedTable('bloated', 20_000, 4); // 75 % dead
    await bloatedTable('healthy', 20_000, 1); // nothing dead
    await bloatedTable('third', 20_000, 3); // 67 % dead: over the 50 % threshold too
    await eventually('bloated', (s) => s.n_dead_tup >= 15_000);
    await eventually('third', (s) => s.n_dead_tup >= 13_000);

    const exit = await runRunner(['run', TASK, '--params', JSON.stringify({ deadTupleRatio: 0.5, minDeadTuples: 1000, schemas: ['public'] })], {
      DATABASE_URL: url,
    });
    expect(exit.code, exit.stdout).toBe(0);
    const vacuumed = exit.lines.filter((l) => l.msg === 'table vacuumed').map((l) => l.table);
    // Biggest first; the migrated tables have no dead tuples.
    expect(vacuumed).toEqual(['"public"."bloated"', '"public"."third"']);
    expect(exit.result?.summary).toMatchObject({ tables_candidate: 2, tables_optimized: 2, indexes_updated: 0 });

    const after = await eventually('bloated', (s) => s.vacuum_count === 1);
    expect(after.n_dead_tup).toBe(0);
    expect(after.last_vacuum).not.toBeNull();
    await eventually('third', (s) => s.vacuum_count === 1);
    expect((await stats('healthy')).vacuum_count).toBe(0);
  });

  it('leaves a table under minDeadTuples alone, however high its ratio', async () => {
    await bloatedTable('tiny', 100, 2); // 50 dead of 100
    await eventually('tiny', (s) => s.n_dead_tup >= 50);
    const exit = await runRunner(['run', TASK, '--params', '{"deadTupleRatio":0.1,"minDeadTuples":1000}'], { DATABASE_URL: url });
    expect(exit.code).toBe(0);
    expect(exit.lines.filter((l) => l.msg === 'table vacuumed').map((l) => l.table)).not.toContain('"public"."tiny"');
    expect((await stats('tiny')).vacuum_count).toBe(0);
  });

  it('quotes identifiers and rebuilds the indexes concurrently when asked', async () => {
    await bloatedTable(WEIRD, 10_000, 2);
    await eventually(WEIRD, (s) => s.n_dead_tup >= 5000);
    const oldIndexes = await indexOids(WEIRD);
    expect(oldIndexes).toHaveLength(2);

    const exit = await runRunner(['run', TASK, '--params', '{"deadTupleRatio":0.4,"minDeadTuples":1000,"reindex":true}'], { DATABASE_URL: url });
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.lines.filter((l) => l.msg === 'table reindexed').map((l) => l.table)).toContain('"public"."Bloated ""Quoted"" Table"');
    expect(exit.result?.summary?.indexes_updated).toBeGreaterThanOrEqual(2);
    await eventually(WEIRD, (s) => s.vacuum_count === 1);
    const newIndexes = await indexOids(WEIRD);
    expect(newIndexes).toHaveLength(2);
    expect(newIndexes.filter((oid) => oldIndexes.includes(oid))).toEqual([]);
  });

  it('changes nothing in a dry run', async () => {
    await bloatedTable('dry', 10_000, 2);
    await eventually('dry', (s) => s.n_dead_tup >= 5000);
    const exit = await runRunner(['run', TASK, '--dry-run', '--params', '{"deadTupleRatio":0.4}'], { DATABASE_URL: url });
    expect(exit.code).toBe(0);
    expect(exit.result?.summary).toMatchObject({ tables_optimized: 0 });
    expect(exit.lines.filter((l) => l.msg === 'would vacuum').map((l) => l.table)).toContain('"public"."dry"');
    await new Promise((r) => setTimeout(r, 1200));
    expect((await stats('dry')).vacuum_count).toBe(0);
  });
});
