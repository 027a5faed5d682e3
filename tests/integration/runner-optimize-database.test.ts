// maintenance.optimize-database as a process: a bloated table is vacuumed (pg_stat_user_tables
// shows it), a healthy one is left alone, identifiers are quoted, REINDEX replaces the indexes.
// Index upkeep against real leftovers: concurrent builds cancelled midway (pg_cancel_backend) while
// another transaction keeps them waiting, builds still under way (also one started while the run
// drops), a DROP that fails, an application's DROP INDEX CONCURRENTLY interrupted, unused indexes by
// pg_stat_user_indexes.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { freshDatabase, migrated, testPool } from '../support/runner-db.ts';
import { buildRunner, runRunner, startRunner, type RunnerExit, type RunningRunner } from '../support/runner-process.ts';

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

/** Reads until `check` holds: statistics reach the pg_stat views asynchronously (within about a second in Postgres 15). */
async function until<T>(what: string, read: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what} never matched: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function eventually(table: string, check: (s: Stats) => boolean): Promise<Stats> {
  return until(`statistics of ${table}`, () => stats(table), check);
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

/** A schema of the test's own: the run looks only there, so its counts are the test's indexes. */
async function freshSchema(schema: string): Promise<void> {
  await db.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  await db.query(`CREATE SCHEMA ${pg.escapeIdentifier(schema)}`);
}

/** `schema.table` with 1000 rows and an index `<table>_payload_idx`; returns its quoted name. */
async function indexedTable(schema: string, table: string): Promise<string> {
  const name = `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(table)}`;
  await db.query(`CREATE TABLE ${name} (id int PRIMARY KEY, payload text)`);
  await db.query(`CREATE INDEX ${pg.escapeIdentifier(`${table}_payload_idx`)} ON ${name} (payload)`);
  await db.query(`INSERT INTO ${name} SELECT g, md5(g::text) FROM generate_series(1, 1000) g`);
  return name;
}

/** Every index in `schema`, by name: whether it is valid. */
async function indexesIn(schema: string): Promise<Record<string, boolean>> {
  const { rows } = await db.query<{ relname: string; indisvalid: boolean }>(
    'SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1',
    [schema],
  );
  return Object.fromEntries(rows.map((r) => [r.relname, r.indisvalid]));
}

async function connection(databaseUrl = url): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  return client;
}

interface HeldBuild {
  /** Lets the build past its waits for old snapshots (a newer snapshot held each time) until it waits on `table`. */
  waitOn(table: string): Promise<void>;
  /** pg_cancel_backend, as a build killed midway: its invalid index stays behind. */
  cancel(): Promise<void>;
  /** Ends the transactions it waits for; resolves once it has finished, throws what it failed with. */
  finish(): Promise<void>;
}

/** A transaction holding a snapshot newer than any build's (an xid is used up first), so a build waits for it. */
async function snapshotHolder(): Promise<pg.Client> {
  await db.query('SELECT txid_current()');
  const client = await connection();
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
  await client.query('SELECT 1');
  return client;
}

interface BuildProgress {
  phase: string;
  relid: string;
  index_relid: string;
}

/**
 * Starts `sql`, a concurrent index build, on a connection of its own, and resolves once it waits
 * for a transaction holding a snapshot ('waiting for old snapshots': its new index built, invalid).
 * With `readerOf`, another transaction holds a lock on that table and the snapshot is let go: a
 * REINDEX then waits after the swap ('waiting for readers before marking dead': the old index,
 * renamed <index>_ccold, invalid).
 */
async function heldBuild(sql: string, options: { readerOf?: string; builderUrl?: string } = {}): Promise<HeldBuild> {
  let snapshot = await snapshotHolder();
  const reader = options.readerOf === undefined ? undefined : await connection();
  await reader?.query('BEGIN');
  await reader?.query(`SELECT 1 FROM ${options.readerOf} LIMIT 1`);
  const builder = await connection(options.builderUrl);
  const { rows } = await builder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const pid = rows[0]!.pid;
  const build = builder.query(sql).then(
    () => undefined,
    (err: unknown) => err,
  );
  const progress = async () =>
    (
      await db.query<BuildProgress>(
        'SELECT phase, relid::regclass::text AS relid, index_relid::regclass::text AS index_relid FROM pg_stat_progress_create_index WHERE pid = $1',
        [pid],
      )
    ).rows[0];
  const waitingFor = (phase: string, after?: BuildProgress) => (p: BuildProgress | undefined) => p?.phase === phase && p.index_relid !== after?.index_relid;
  let at = await until(`the progress of ${sql}`, progress, waitingFor('waiting for old snapshots'));
  if (reader) {
    await snapshot.query('COMMIT');
    await until(`the progress of ${sql}`, progress, waitingFor('waiting for readers before marking dead'));
  }
  const end = async (): Promise<unknown> => {
    const failure = await build;
    await Promise.all([snapshot, reader, builder].map((c) => c?.end()));
    return failure;
  };
  return {
    async waitOn(table) {
      while (at!.relid !== table) {
        const newer = await snapshotHolder();
        await snapshot.query('COMMIT');
        await snapshot.end();
        snapshot = newer;
        at = await until(`the progress of ${sql}`, progress, waitingFor('waiting for old snapshots', at));
      }
    },
    async cancel() {
      await db.query('SELECT pg_cancel_backend($1)', [pid]);
      expect(await end()).toMatchObject({ code: '57014' }); // query_canceled
    },
    async finish() {
      await (reader ?? snapshot).query('COMMIT');
      const failure = await end();
      if (failure) throw failure;
    },
  };
}

/**
 * Starts the task on `schema` alone. A lock it would wait for (a build's, say) fails the run within
 * 5 s (lock_timeout) instead of keeping the test waiting.
 */
function startOn(schema: string, params: Record<string, unknown> = {}, options: { dryRun?: boolean; databaseUrl?: string } = {}): RunningRunner {
  const databaseUrl = new URL(options.databaseUrl ?? url);
  databaseUrl.searchParams.set('options', '-c lock_timeout=5s');
  const dryRun = options.dryRun ? ['--dry-run'] : [];
  return startRunner(['run', TASK, ...dryRun, '--params', JSON.stringify({ schemas: [schema], ...params })], { DATABASE_URL: databaseUrl.href });
}

function runOn(...args: Parameters<typeof startOn>): Promise<RunnerExit> {
  return startOn(...args).exit;
}

/** The `index` of every log line with message `msg`. */
function logged(exit: RunnerExit, msg: string): unknown[] {
  return exit.lines.filter((l) => l.msg === msg).map((l) => l.index);
}

/** Until the DROP INDEX CONCURRENTLY of the runner (or of session `pid`) waits for a lock. */
async function dropWaiting(pid?: number): Promise<void> {
  const waiting = async () =>
    (
      await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'DROP INDEX CONCURRENTLY%' AND ($1::int IS NULL OR pid = $1)",
        [pid ?? null],
      )
    ).rows[0]?.n;
  await until('a DROP INDEX CONCURRENTLY waiting', waiting, (n) => n === 1);
}

/**
 * DROP INDEX CONCURRENTLY of `index` cancelled while it waits for the readers of `table`: before
 * it marked the index dead (invalid, still written and, if unique, still enforced), or with `dead`
 * after (no longer written: the last step before the drop itself).
 */
async function interruptedDrop(index: string, table: string, dead: boolean): Promise<void> {
  const reader = async () => {
    const client = await connection();
    await client.query('BEGIN');
    await client.query(`SELECT 1 FROM ${table} LIMIT 1`);
    return client;
  };
  const first = await reader();
  const dropper = await connection();
  const pid = (await dropper.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const oid = (await db.query<{ oid: number }>('SELECT $1::regclass::oid::int AS oid', [index])).rows[0]!.oid;
  const drop = dropper.query(`DROP INDEX CONCURRENTLY ${index}`).then(() => undefined, (err: unknown) => err);
  await dropWaiting(pid);
  // A reader that came after the first wait began: the DROP waits for it only at its second.
  const second = dead ? await reader() : undefined;
  if (second) {
    await first.query('COMMIT');
    const live = async () => (await db.query<{ indislive: boolean }>('SELECT indislive FROM pg_index WHERE indexrelid = $1', [oid])).rows[0]?.indislive;
    await until(`${index} marked dead`, live, (l) => l === false);
  }
  await db.query('SELECT pg_cancel_backend($1)', [pid]);
  expect(await drop).toMatchObject({ code: '57014' });
  await Promise.all([first, second].map(async (c) => {
    await c?.query('COMMIT');
    await c?.end();
  }));
  await dropper.end();
}

async function idxScan(schema: string, index: string): Promise<number> {
  const { rows } = await db.query<{ idx_scan: number }>(
    'SELECT idx_scan::int FROM pg_stat_user_indexes WHERE schemaname = $1 AND indexrelname = $2',
    [schema, index],
  );
  return rows[0]?.idx_scan ?? Number.NaN;
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

describe(`${TASK}: index upkeep`, () => {
  it('drops the invalid copies that cancelled REINDEX CONCURRENTLYs left: <index>_ccnew before the swap, <index>_ccold after it', async () => {
    await freshSchema('leftover');
    await indexedTable('leftover', 'fresh');
    const swapped = await indexedTable('leftover', 'swapped');
    await (await heldBuild('REINDEX INDEX CONCURRENTLY leftover.fresh_payload_idx')).cancel();
    await (await heldBuild('REINDEX INDEX CONCURRENTLY leftover.swapped_payload_idx', { readerOf: swapped })).cancel();
    const untouched = { fresh_pkey: true, fresh_payload_idx: true, swapped_pkey: true, swapped_payload_idx: true };
    expect(await indexesIn('leftover')).toEqual({ ...untouched, fresh_payload_idx_ccnew: false, swapped_payload_idx_ccold: false });

    const exit = await runOn('leftover');
    expect(exit.code, exit.stdout).toBe(0);
    expect(logged(exit, 'leftover invalid index dropped')).toEqual(['"leftover"."fresh_payload_idx_ccnew"', '"leftover"."swapped_payload_idx_ccold"']);
    expect(exit.result?.summary).toMatchObject({ leftover_indexes: 2, invalid_indexes_dropped: 2, invalid_indexes_reported: 0 });
    expect(exit.result?.message).toBe('vacuumed 0 tables; dropped 2 leftover invalid indexes');
    expect(await indexesIn('leftover')).toEqual(untouched);
  });

  it("reports an invalid index of the application's own and never drops it; rebuilds it when reindex is on", async () => {
    await freshSchema('own');
    const table = await indexedTable('own', 't');
    await (await heldBuild(`CREATE INDEX CONCURRENTLY t_id_payload_idx ON ${table} (id, payload)`)).cancel();
    // A partitioned index is invalid until each partition has one attached: no failed build, none of the task's business.
    await db.query(`
      CREATE TABLE own.p (id int) PARTITION BY RANGE (id);
      CREATE TABLE own.p1 PARTITION OF own.p FOR VALUES FROM (0) TO (10);
      CREATE INDEX p_id_idx ON ONLY own.p (id)`);
    expect(await indexesIn('own')).toEqual({ t_pkey: true, t_payload_idx: true, t_id_payload_idx: false, p_id_idx: false });

    const reported = await runOn('own');
    expect(reported.code, reported.stdout).toBe(0);
    expect(reported.lines.filter((l) => l.msg === 'invalid index').map((l) => [l.level, l.index, l.table])).toEqual([['warn', '"own"."t_id_payload_idx"', '"own"."t"']]);
    expect(reported.result?.summary).toMatchObject({ invalid_indexes_reported: 1, invalid_indexes_rebuilt: 0, leftover_indexes: 0, invalid_indexes_dropped: 0 });
    expect(reported.result?.message).toBe('vacuumed 0 tables; reported 1 invalid index ("own"."t_id_payload_idx")');
    expect(await indexesIn('own')).toEqual({ t_pkey: true, t_payload_idx: true, t_id_payload_idx: false, p_id_idx: false });

    const rebuilt = await runOn('own', { reindex: true });
    expect(rebuilt.code, rebuilt.stdout).toBe(0);
    expect(logged(rebuilt, 'invalid index rebuilt')).toEqual(['"own"."t_id_payload_idx"']);
    expect(rebuilt.result?.summary).toMatchObject({ invalid_indexes_reported: 1, invalid_indexes_rebuilt: 1, invalid_indexes_dropped: 0 });
    expect(rebuilt.result?.message).toBe('vacuumed 0 tables; rebuilt 1 of 1 invalid index ("own"."t_id_payload_idx")');
    expect(await indexesIn('own')).toEqual({ t_pkey: true, t_payload_idx: true, t_id_payload_idx: true, p_id_idx: false });
  });

  it('keeps an invalid unique index its rows break, goes on, and drops the copy each failed rebuild leaves, whatever dropInvalidIndexes says', async () => {
    await freshSchema('dup');
    await db.query('CREATE TABLE dup.t (id int PRIMARY KEY, code int)');
    await db.query('INSERT INTO dup.t SELECT g, g % 10 FROM generate_series(1, 1000) g');
    await expect(db.query('CREATE UNIQUE INDEX CONCURRENTLY t_code_key ON dup.t (code)')).rejects.toMatchObject({ code: '23505' });
    // A leftover on the same table from before the rebuild: not its copy, so kept while dropInvalidIndexes is off.
    await (await heldBuild('REINDEX INDEX CONCURRENTLY dup.t_pkey')).cancel();
    const kept = { t_pkey: true, t_code_key: false, t_pkey_ccnew: false };
    expect(await indexesIn('dup')).toEqual(kept);

    // Run after run, each failed rebuild's copy goes at once: none piles up (_ccnew, _ccnew1, …).
    for (const run of [1, 2]) {
      const exit = await runOn('dup', { reindex: true, dropInvalidIndexes: false });
      expect(exit.code, exit.stdout).toBe(0);
      const refused = exit.lines.filter((l) => l.msg === 'invalid index not rebuilt: the rows break its rule');
      expect(refused.map((l) => [l.level, l.index, (l.err as { code?: string } | undefined)?.code])).toEqual([['warn', '"dup"."t_code_key"', '23505']]);
      expect(logged(exit, 'invalid copy of the failed rebuild dropped'), `run ${run}`).toEqual(['"dup"."t_code_key_ccnew"']);
      expect(exit.result?.summary).toMatchObject({ invalid_indexes_reported: 1, invalid_indexes_rebuilt: 0, leftover_indexes: 1, invalid_indexes_dropped: 0 });
      expect(await indexesIn('dup'), `run ${run}`).toEqual(kept);
    }

    const dropping = await runOn('dup', { reindex: true });
    expect(dropping.code, dropping.stdout).toBe(0);
    expect(logged(dropping, 'invalid copy of the failed rebuild dropped')).toEqual(['"dup"."t_code_key_ccnew"']);
    expect(logged(dropping, 'leftover invalid index dropped')).toEqual(['"dup"."t_pkey_ccnew"']);
    expect(dropping.result?.summary).toMatchObject({ invalid_indexes_rebuilt: 0, leftover_indexes: 1, invalid_indexes_dropped: 1 });
    expect(await indexesIn('dup')).toEqual({ t_pkey: true, t_code_key: false });
  });

  it('leaves alone the indexes another session is building right now', async () => {
    await freshSchema('busy');
    const table = await indexedTable('busy', 't');
    // Without the check, the DROP would wait for the REINDEX's lock and fail the run at lock_timeout.
    const reindexing = await heldBuild('REINDEX INDEX CONCURRENTLY busy.t_payload_idx');
    try {
      expect(await indexesIn('busy')).toMatchObject({ t_payload_idx_ccnew: false });
      const exit = await runOn('busy');
      expect(exit.code, exit.stdout).toBe(0);
      expect(logged(exit, 'index being built by another session: left alone')).toEqual(['"busy"."t_payload_idx_ccnew"']);
      expect(exit.result?.summary).toMatchObject({ leftover_indexes: 0, invalid_indexes_dropped: 0 });
    } finally {
      await reindexing.finish();
    }
    expect(await indexesIn('busy')).toEqual({ t_pkey: true, t_payload_idx: true });

    // Nor is an index the application is creating reported as invalid or rebuilt.
    const creating = await heldBuild(`CREATE INDEX CONCURRENTLY t_id_payload_idx ON ${table} (id, payload)`);
    try {
      const exit = await runOn('busy', { reindex: true });
      expect(exit.code, exit.stdout).toBe(0);
      expect(logged(exit, 'index being built by another session: left alone')).toEqual(['"busy"."t_id_payload_idx"']);
      expect(exit.result?.summary).toMatchObject({ invalid_indexes_reported: 0, invalid_indexes_rebuilt: 0 });
    } finally {
      await creating.finish();
    }
    expect(await indexesIn('busy')).toEqual({ t_pkey: true, t_payload_idx: true, t_id_payload_idx: true });

    // A REINDEX TABLE CONCURRENTLY builds every copy, its TOAST table's too, then validates them
    // one by one, the progress naming the table of each: all are left alone at every step.
    const { rows } = await db.query<{ toast: string; toast_index: string }>(`
      SELECT c.reltoastrelid::regclass::text AS toast, x.relname AS toast_index
      FROM pg_class c JOIN pg_index i ON i.indrelid = c.reltoastrelid JOIN pg_class x ON x.oid = i.indexrelid
      WHERE c.oid = 'busy.t'::regclass`);
    const { toast, toast_index: toastIndex } = rows[0]!;
    const copies = ['"busy"."t_id_payload_idx_ccnew"', '"busy"."t_payload_idx_ccnew"', '"busy"."t_pkey_ccnew"', `"pg_toast"."${toastIndex}_ccnew"`];
    const reindexingTable = await heldBuild(`REINDEX TABLE CONCURRENTLY ${table}`);
    try {
      for (const building of ['busy.t', toast]) {
        await reindexingTable.waitOn(building);
        const exit = await runOn('busy', { schemas: ['busy', 'pg_toast'] });
        expect(exit.code, exit.stdout).toBe(0);
        expect(logged(exit, 'index being built by another session: left alone')).toEqual(copies);
        expect(exit.result?.summary).toMatchObject({ leftover_indexes: 0, invalid_indexes_dropped: 0 });
      }
    } finally {
      await reindexingTable.finish();
    }
    expect(await indexesIn('busy')).toEqual({ t_pkey: true, t_payload_idx: true, t_id_payload_idx: true });
  });

  it("takes a build it may not see (another role's) as one on any table, and touches no other owner's table", async () => {
    await freshSchema('roles');
    const password = 'optimize-database-test';
    const asRole = (role: string) => Object.assign(new URL(url), { username: role, password }).href;
    await db.query(`
      CREATE ROLE optdb_app NOLOGIN;
      CREATE ROLE optdb_maint LOGIN PASSWORD '${password}' IN ROLE optdb_app;
      CREATE ROLE optdb_builder LOGIN PASSWORD '${password}' IN ROLE optdb_app;
      GRANT USAGE, CREATE ON SCHEMA roles TO optdb_app;
      GRANT SELECT, INSERT, UPDATE ON task_runs TO optdb_maint`);
    for (const table of ['mine', 'busy', 'theirs']) await indexedTable('roles', table);
    await db.query('ALTER TABLE roles.mine OWNER TO optdb_app; ALTER TABLE roles.busy OWNER TO optdb_app');
    await (await heldBuild('REINDEX INDEX CONCURRENTLY roles.mine_payload_idx')).cancel();
    await (await heldBuild('REINDEX INDEX CONCURRENTLY roles.theirs_payload_idx')).cancel();

    // optdb_maint may not see which table optdb_builder's build is on: it drops no leftover meanwhile.
    const building = await heldBuild('REINDEX INDEX CONCURRENTLY roles.busy_payload_idx', { builderUrl: asRole('optdb_builder') });
    try {
      const exit = await runOn('roles', {}, { databaseUrl: asRole('optdb_maint') });
      expect(exit.code, exit.stdout).toBe(0);
      expect(logged(exit, 'index being built by another session: left alone')).toEqual(['"roles"."busy_payload_idx_ccnew"', '"roles"."mine_payload_idx_ccnew"']);
      expect(exit.result?.summary).toMatchObject({ leftover_indexes: 0, invalid_indexes_dropped: 0 });
    } finally {
      await building.finish();
    }

    const exit = await runOn('roles', {}, { databaseUrl: asRole('optdb_maint') });
    expect(exit.code, exit.stdout).toBe(0);
    expect(logged(exit, 'leftover invalid index dropped')).toEqual(['"roles"."mine_payload_idx_ccnew"']);
    expect(exit.result?.summary).toMatchObject({ leftover_indexes: 1, invalid_indexes_dropped: 1 });
    expect(await indexesIn('roles')).toMatchObject({ theirs_payload_idx_ccnew: false });
    expect(await indexesIn('roles')).not.toHaveProperty('mine_payload_idx_ccnew');
  });

  it('skips a leftover someone else drops while its DROP waits, and goes on', async () => {
    await freshSchema('gone');
    const table = await indexedTable('gone', 't');
    await (await heldBuild('REINDEX INDEX CONCURRENTLY gone.t_payload_idx')).cancel();
    const other = await connection();
    await other.query('BEGIN');
    await other.query(`LOCK TABLE ${table} IN SHARE UPDATE EXCLUSIVE MODE`);
    const running = startOn('gone');
    const waiting = async () =>
      (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'DROP INDEX CONCURRENTLY%'")).rows[0]?.n;
    await until('the DROP waiting for the table', waiting, (n) => n === 1);
    await other.query('DROP INDEX gone.t_payload_idx_ccnew');
    await other.query('COMMIT');
    await other.end();

    const exit = await running.exit;
    expect(exit.code, exit.stdout).toBe(0);
    expect(logged(exit, 'leftover invalid index gone before it was dropped')).toEqual(['"gone"."t_payload_idx_ccnew"']);
    expect(exit.result?.summary).toMatchObject({ leftover_indexes: 1, invalid_indexes_dropped: 0 });
    expect(exit.result?.message).toBe('vacuumed 0 tables; dropped 0 leftover invalid indexes');
  });

  it('counts a DROP that fails (here at lock_timeout) against its index, drops the others, vacuums, then fails the run naming it; the next run drops it', async () => {
    await freshSchema('dropfail');
    const a = await indexedTable('dropfail', 'a');
    await indexedTable('dropfail', 'b');
    await (await heldBuild('REINDEX INDEX CONCURRENTLY dropfail.a_payload_idx')).cancel();
    await (await heldBuild('REINDEX INDEX CONCURRENTLY dropfail.b_payload_idx')).cancel();
    await db.query('CREATE TABLE dropfail.bloated (id int PRIMARY KEY) WITH (autovacuum_enabled = false)');
    await db.query('INSERT INTO dropfail.bloated SELECT g FROM generate_series(1, 10000) g');
    await db.query('DELETE FROM dropfail.bloated WHERE id % 2 = 0');
    const dead = async () => (await db.query<{ n: number }>("SELECT n_dead_tup::int AS n FROM pg_stat_user_tables WHERE relid = 'dropfail.bloated'::regclass")).rows[0]?.n ?? 0;
    await until('the dead tuples of dropfail.bloated', dead, (n) => n >= 5000);
    // Held past the run's lock_timeout (5 s): the DROP of a's leftover gives up.
    const other = await connection();
    await other.query('BEGIN');
    await other.query(`LOCK TABLE ${a} IN SHARE UPDATE EXCLUSIVE MODE`);
    let exit: RunnerExit;
    try {
      exit = await runOn('dropfail', { deadTupleRatio: 0.4 });
    } finally {
      await other.query('COMMIT');
      await other.end();
    }
    expect(exit.code, exit.stdout).toBe(1);
    const failed = exit.lines.filter((l) => l.msg === 'leftover invalid index not dropped');
    expect(failed.map((l) => [l.level, l.index, (l.err as { code?: string } | undefined)?.code])).toEqual([['warn', '"dropfail"."a_payload_idx_ccnew"', '55P03']]);
    expect(logged(exit, 'leftover invalid index dropped')).toEqual(['"dropfail"."b_payload_idx_ccnew"']);
    expect(exit.result?.summary).toMatchObject({ leftover_indexes: 2, invalid_indexes_dropped: 1, index_drops_failed: 1, tables_optimized: 1 });
    expect(exit.result?.message).toBe(
      '1 index drop failed: "dropfail"."a_payload_idx_ccnew": canceling statement due to lock timeout; vacuumed 1 table; dropped 1 leftover invalid index',
    );
    expect(await indexesIn('dropfail')).toMatchObject({ a_payload_idx_ccnew: false });
    expect(await indexesIn('dropfail')).not.toHaveProperty('b_payload_idx_ccnew');

    const next = await runOn('dropfail');
    expect(next.code, next.stdout).toBe(0);
    expect(logged(next, 'leftover invalid index dropped')).toEqual(['"dropfail"."a_payload_idx_ccnew"']);
    expect(next.result?.summary).toMatchObject({ invalid_indexes_dropped: 1, index_drops_failed: 0 });
  });

  it('asks again right before each DROP whether a build is under way on the table: a build started since the list was read keeps its leftover', async () => {
    await freshSchema('late');
    const a = await indexedTable('late', 'a');
    await indexedTable('late', 'b');
    await (await heldBuild('REINDEX INDEX CONCURRENTLY late.a_payload_idx')).cancel();
    await (await heldBuild('REINDEX INDEX CONCURRENTLY late.b_payload_idx')).cancel();
    // The DROP of a's leftover waits for this lock; meanwhile a build starts on b.
    const other = await connection();
    await other.query('BEGIN');
    await other.query(`LOCK TABLE ${a} IN SHARE UPDATE EXCLUSIVE MODE`);
    const running = startOn('late');
    let building: HeldBuild | undefined;
    try {
      await dropWaiting();
      building = await heldBuild('REINDEX INDEX CONCURRENTLY late.b_pkey');
    } finally {
      await other.query('COMMIT');
      await other.end();
    }
    let exit: RunnerExit;
    try {
      exit = await running.exit;
    } finally {
      await building?.finish();
    }
    // Without the second look, the DROP of b's leftover would wait for the build and fail at lock_timeout.
    expect(exit.code, exit.stdout).toBe(0);
    expect(logged(exit, 'leftover invalid index dropped')).toEqual(['"late"."a_payload_idx_ccnew"']);
    expect(logged(exit, 'index being built by another session: left alone')).toEqual(['"late"."b_payload_idx_ccnew"']);
    expect(exit.result?.summary).toMatchObject({ leftover_indexes: 2, invalid_indexes_dropped: 1, index_drops_failed: 0 });
    expect(await indexesIn('late')).toEqual({ a_pkey: true, a_payload_idx: true, b_pkey: true, b_payload_idx: true, b_payload_idx_ccnew: false });
  });

  it("reports, never rebuilds, an index whose DROP INDEX CONCURRENTLY was interrupted after marking it dead; rebuilds one interrupted before that (it looks like a failed CREATE INDEX CONCURRENTLY)", async () => {
    await freshSchema('halfdrop');
    await db.query('CREATE TABLE halfdrop.t (id int PRIMARY KEY, code int)');
    await db.query('INSERT INTO halfdrop.t SELECT g, g FROM generate_series(1, 1000) g');
    await db.query('CREATE UNIQUE INDEX t_code_key ON halfdrop.t (code)');
    await db.query('CREATE INDEX t_id_code_idx ON halfdrop.t (id, code)');
    await interruptedDrop('halfdrop.t_code_key', 'halfdrop.t', true);
    await interruptedDrop('halfdrop.t_id_code_idx', 'halfdrop.t', false);
    expect(await indexesIn('halfdrop')).toEqual({ t_pkey: true, t_code_key: false, t_id_code_idx: false });

    for (const dryRun of [true, false]) {
      const exit = await runOn('halfdrop', { reindex: true }, { dryRun });
      expect(exit.code, exit.stdout).toBe(0);
      const dropping = exit.lines.filter((l) => l.msg === 'invalid index left by an interrupted DROP INDEX CONCURRENTLY: never rebuilt');
      expect(dropping.map((l) => [l.level, l.index])).toEqual([['warn', '"halfdrop"."t_code_key"']]);
      expect(exit.result?.summary).toMatchObject({ invalid_indexes_reported: 1, half_dropped_indexes: 1, invalid_indexes_rebuilt: dryRun ? 0 : 1 });
      const halfDropped = 'reported 1 half-dropped index ("halfdrop"."t_code_key"): interrupted DROP INDEX CONCURRENTLY, never rebuilt';
      expect(exit.result?.message).toBe(
        dryRun
          ? `dry run: 0 tables would be vacuumed; 1 invalid index ("halfdrop"."t_id_code_idx") would be rebuilt; ${halfDropped}`
          : `vacuumed 0 tables; rebuilt 1 of 1 invalid index ("halfdrop"."t_id_code_idx"); ${halfDropped}`,
      );
    }
    expect(await indexesIn('halfdrop')).toEqual({ t_pkey: true, t_code_key: false, t_id_code_idx: true });
    // No longer written, its rule no longer holds, as the DROP meant.
    await db.query('INSERT INTO halfdrop.t VALUES (5000, 1)');
  });

  it('keeps the leftovers when dropInvalidIndexes is off, and a dry run says so too', async () => {
    await freshSchema('keep');
    await indexedTable('keep', 't');
    await (await heldBuild('REINDEX INDEX CONCURRENTLY keep.t_payload_idx')).cancel();

    for (const dryRun of [true, false]) {
      const exit = await runOn('keep', { dropInvalidIndexes: false }, { dryRun });
      expect(exit.code, exit.stdout).toBe(0);
      expect(logged(exit, 'leftover invalid index kept: dropInvalidIndexes is off')).toEqual(['"keep"."t_payload_idx_ccnew"']);
      expect(logged(exit, 'would drop leftover invalid index')).toEqual([]);
      expect(exit.result?.summary).toMatchObject({ leftover_indexes: 1, invalid_indexes_dropped: 0 });
      expect(exit.result?.message).toBe(`${dryRun ? 'dry run: 0 tables would be vacuumed' : 'vacuumed 0 tables'}; kept 1 leftover invalid index`);
      expect(await indexesIn('keep')).toEqual({ t_pkey: true, t_payload_idx: true, t_payload_idx_ccnew: false });
    }
  });

  it('reports the unused indexes over the size threshold (not those serving a foreign key), and drops none', async () => {
    const minBytes = 200_000;
    await freshSchema('unused');
    await db.query('CREATE TABLE unused.owner (a int, b int, PRIMARY KEY (a, b))');
    await db.query('INSERT INTO unused.owner SELECT g, g FROM generate_series(1, 20000) g');
    await db.query(`CREATE TABLE unused.big (id int PRIMARY KEY, code int, grp int, scanned int, payload text, oa int, ob int,
                      EXCLUDE USING btree (grp WITH =), FOREIGN KEY (oa, ob) REFERENCES unused.owner (a, b))`);
    await db.query('INSERT INTO unused.big SELECT g, g, g, g, md5(g::text), g, g FROM generate_series(1, 20000) g');
    await db.query('CREATE UNIQUE INDEX big_code_key ON unused.big (code)'); // unique, but backing no constraint
    await db.query('CREATE INDEX big_payload_idx ON unused.big (payload)');
    await db.query('CREATE INDEX big_scanned_idx ON unused.big (scanned)');
    // Deleting an owner row looks its big rows up through the first (the foreign key's columns
    // lead it, in another order), not through the second (only part of the key).
    await db.query('CREATE INDEX big_owner_idx ON unused.big (ob, oa, payload)');
    await db.query('CREATE INDEX big_ob_idx ON unused.big (ob)');
    await db.query('CREATE TABLE unused.small (id int, payload text)');
    await db.query('INSERT INTO unused.small SELECT g, md5(g::text) FROM generate_series(1, 100) g');
    await db.query('CREATE INDEX small_payload_idx ON unused.small (payload)');
    // The exclusion constraint's checks on insert scan its index: counted from zero again, as after a statistics reset.
    await until('the scans of big_grp_excl', () => idxScan('unused', 'big_grp_excl'), (n) => n > 0);
    await db.query("SELECT pg_stat_reset_single_table_counters('unused.big_grp_excl'::regclass)");
    const reader = await connection();
    await reader.query('SET enable_seqscan = off');
    await reader.query('SELECT count(*) FROM unused.big WHERE scanned = 42');
    await reader.end();
    await until('the scan of big_scanned_idx', () => idxScan('unused', 'big_scanned_idx'), (n) => n > 0);
    expect(await idxScan('unused', 'big_grp_excl')).toBe(0);
    // What keeps an index out of the report is its kind or its use, not its size: all but small's are over the threshold.
    const { rows } = await db.query<{ relname: string; bytes: number }>(
      "SELECT c.relname, pg_relation_size(c.oid)::int AS bytes FROM pg_class c WHERE c.relnamespace = 'unused'::regnamespace AND c.relkind = 'i' ORDER BY 1",
    );
    const sizes = Object.fromEntries(rows.map((r) => [r.relname, r.bytes]));
    expect(Object.entries(sizes).filter(([, bytes]) => bytes >= minBytes).map(([name]) => name)).toEqual([
      'big_code_key', 'big_grp_excl', 'big_ob_idx', 'big_owner_idx', 'big_payload_idx', 'big_pkey', 'big_scanned_idx', 'owner_pkey',
    ]);
    expect(sizes.big_payload_idx).toBeGreaterThan(sizes.big_ob_idx!);

    const exit = await runOn('unused', { unusedIndexMinBytes: minBytes });
    expect(exit.code, exit.stdout).toBe(0);
    const reported = exit.lines.filter((l) => l.msg === 'unused index').map((l) => [l.index, l.table, l.bytes]);
    expect(reported).toEqual([
      ['"unused"."big_payload_idx"', '"unused"."big"', sizes.big_payload_idx],
      ['"unused"."big_ob_idx"', '"unused"."big"', sizes.big_ob_idx],
    ]);
    expect(exit.result?.summary).toMatchObject({ unused_indexes: 2 });
    expect(exit.result?.message).toBe('vacuumed 0 tables; 2 unused indexes reported');
    expect(await indexesIn('unused')).toHaveProperty('big_payload_idx', true);

    const off = await runOn('unused', { unusedIndexMinBytes: minBytes, reportUnusedIndexes: false });
    expect(off.code, off.stdout).toBe(0);
    expect(logged(off, 'unused index')).toEqual([]);
    expect(off.result?.summary).not.toHaveProperty('unused_indexes');
  });

  it('changes no index in a dry run, and says what it would do', async () => {
    await freshSchema('dry_index');
    const table = await indexedTable('dry_index', 't');
    await (await heldBuild('REINDEX INDEX CONCURRENTLY dry_index.t_payload_idx')).cancel();
    await (await heldBuild(`CREATE INDEX CONCURRENTLY t_id_payload_idx ON ${table} (id, payload)`)).cancel();
    const before = await indexesIn('dry_index');
    expect(before).toEqual({ t_pkey: true, t_payload_idx: true, t_payload_idx_ccnew: false, t_id_payload_idx: false });

    const exit = await runOn('dry_index', { reindex: true }, { dryRun: true });
    expect(exit.code, exit.stdout).toBe(0);
    expect(logged(exit, 'would drop leftover invalid index')).toEqual(['"dry_index"."t_payload_idx_ccnew"']);
    expect(logged(exit, 'would rebuild invalid index')).toEqual(['"dry_index"."t_id_payload_idx"']);
    expect(exit.result?.summary).toMatchObject({ leftover_indexes: 1, invalid_indexes_dropped: 0, invalid_indexes_reported: 1, invalid_indexes_rebuilt: 0 });
    expect(exit.result?.message).toBe(
      'dry run: 0 tables would be vacuumed; 1 invalid index ("dry_index"."t_id_payload_idx") would be rebuilt; 1 leftover invalid index would be dropped',
    );
    expect(await indexesIn('dry_index')).toEqual(before);
  });
});
