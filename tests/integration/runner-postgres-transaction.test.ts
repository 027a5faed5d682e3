// withTransaction (task-runner/services/postgres.ts) against the host Postgres: it commits what
// its function did, rolls back on any error and rethrows that very error, keeps the first error
// when the ROLLBACK fails too, honours the isolation level, and always gives its client back.
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { beginStatement, withTransaction } from '../../task-runner/services/postgres.ts';
import { freshDatabase, testPool } from '../support/runner-db.ts';

let url: string;
let pool: pg.Pool;

beforeAll(async () => {
  url = await freshDatabase(inject('pgUrl'), 'runner_postgres_transaction');
  pool = testPool(url);
  await pool.query('CREATE TABLE items (k int PRIMARY KEY, v text)');
  await pool.query('CREATE TABLE deferred (k int UNIQUE DEFERRABLE INITIALLY DEFERRED)');
});
afterAll(async () => {
  await pool.end();
});
beforeEach(async () => {
  await pool.query('TRUNCATE items, deferred');
});

async function keys(): Promise<number[]> {
  return (await pool.query<{ k: number }>('SELECT k FROM items ORDER BY k')).rows.map((r) => r.k);
}

/** Every client the pool holds is idle again: none was kept checked out. */
function expectAllReleased(): void {
  expect(pool.idleCount).toBe(pool.totalCount);
  expect(pool.waitingCount).toBe(0);
}

const warnings = () => {
  const seen: { obj: unknown; msg: string }[] = [];
  return { seen, log: { warn: (obj: unknown, msg: string) => void seen.push({ obj, msg }) } as never };
};

describe('withTransaction', () => {
  it("commits what the function did and returns the function's result", async () => {
    const result = await withTransaction(pool, async (client) => {
      await client.query("INSERT INTO items VALUES (1, 'a'), (2, 'b')");
      // Not visible outside before COMMIT.
      expect((await pool.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(0);
      return 'done';
    });
    expect(result).toBe('done');
    expect(await keys()).toEqual([1, 2]);
    expectAllReleased();
  });

  it('rolls back on an error and rethrows that same error, its cause kept', async () => {
    const cause = new Error('the root of it');
    const thrown = new Error('the function failed', { cause });
    const rejected = await withTransaction(pool, async (client) => {
      await client.query("INSERT INTO items VALUES (1, 'a')");
      throw thrown;
    }).catch((err: unknown) => err);
    expect(rejected).toBe(thrown);
    expect((rejected as Error).cause).toBe(cause);
    expect(await keys()).toEqual([]);
    expectAllReleased();
  });

  it('rolls back after a failed statement (an aborted transaction) and rethrows the Postgres error', async () => {
    const rejected = await withTransaction(pool, async (client) => {
      await client.query("INSERT INTO items VALUES (1, 'a')");
      await client.query("INSERT INTO items VALUES (1, 'again')");
    }).catch((err: unknown) => err);
    expect(rejected).toMatchObject({ code: '23505' }); // unique_violation
    expect(await keys()).toEqual([]);
    // The connection went back clean: the next transaction on it works.
    await withTransaction(pool, (client) => client.query("INSERT INTO items VALUES (3, 'c')"));
    expect(await keys()).toEqual([3]);
    expectAllReleased();
  });

  it('rethrows a failing COMMIT (a deferred constraint) and stores nothing', async () => {
    const rejected = await withTransaction(pool, async (client) => {
      await client.query("INSERT INTO items VALUES (1, 'a')");
      await client.query('INSERT INTO deferred VALUES (1), (1)');
    }).catch((err: unknown) => err);
    expect(rejected).toMatchObject({ code: '23505' });
    expect(await keys()).toEqual([]);
    expectAllReleased();
  });

  it('keeps the original error when the ROLLBACK fails too, logs it, and closes that connection', async () => {
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const { seen, log } = warnings();
      const original = new Error('the work failed');
      let pid = 0;
      const rejected = await withTransaction(
        pool,
        async (client) => {
          // A checked-out client with no listener would crash the test when its server goes away.
          client.on('error', () => undefined);
          await client.query("INSERT INTO items VALUES (1, 'a')");
          pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
          await admin.query('SELECT pg_terminate_backend($1)', [pid]);
          for (let i = 0; i < 100; i++) {
            const { rowCount } = await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
            if (rowCount === 0) break;
            await new Promise((r) => setTimeout(r, 20));
          }
          throw original;
        },
        { log },
      ).catch((err: unknown) => err);
      expect(rejected).toBe(original);
      expect(seen).toHaveLength(1);
      expect(seen[0]!.msg).toMatch(/ROLLBACK failed/);
      expect((seen[0]!.obj as { err: unknown }).err).toBeInstanceOf(Error);
      // The broken connection left the pool instead of going back to it: as many queries at once
      // as the pool has clients all succeed, none on the terminated server process.
      const ids = await Promise.all([1, 2, 3].map(() => pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')));
      expect(ids.map((r) => r.rows[0]!.pid)).not.toContain(pid);
      expect(await keys()).toEqual([]);
      expectAllReleased();
    } finally {
      await admin.end();
    }
  });

  it('a failing BEGIN is rethrown, the function never called, the client released', async () => {
    let called = false;
    const rejected = await withTransaction(pool, async () => void (called = true), { isolation: 'chaos' as never }).catch((err: unknown) => err);
    expect(rejected).toMatchObject({ code: '42601' }); // syntax_error, from BEGIN ISOLATION LEVEL CHAOS
    expect(called).toBe(false);
    expectAllReleased();
  });

  it('opens the transaction with the isolation level and access mode asked for', async () => {
    expect(beginStatement()).toBe('BEGIN');
    expect(beginStatement({ isolation: 'repeatable read', readOnly: true })).toBe('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    expect(beginStatement({ isolation: 'serializable' })).toBe('BEGIN ISOLATION LEVEL SERIALIZABLE');

    const settings = await withTransaction(
      pool,
      async (client) => {
        const { rows } = await client.query<{ iso: string; ro: string }>(
          "SELECT current_setting('transaction_isolation') AS iso, current_setting('transaction_read_only') AS ro",
        );
        return rows[0];
      },
      { isolation: 'repeatable read', readOnly: true },
    );
    expect(settings).toEqual({ iso: 'repeatable read', ro: 'on' });

    const defaults = await withTransaction(pool, async (client) => (await client.query<{ iso: string }>("SELECT current_setting('transaction_isolation') AS iso")).rows[0]!.iso);
    expect(defaults).toBe('read committed');

    const refused = await withTransaction(pool, (client) => client.query("INSERT INTO items VALUES (9, 'x')"), { readOnly: true }).catch((err: unknown) => err);
    expect(refused).toMatchObject({ code: '25006' }); // read_only_sql_transaction
    expectAllReleased();
  });

  it('repeatable read: every read of the transaction sees one snapshot', async () => {
    await pool.query("INSERT INTO items VALUES (1, 'a')");
    const counts = await withTransaction(
      pool,
      async (client) => {
        const first = (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM items')).rows[0]!.n;
        await pool.query("INSERT INTO items VALUES (2, 'b')"); // committed by another connection meanwhile
        const second = (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM items')).rows[0]!.n;
        return [first, second];
      },
      { isolation: 'repeatable read', readOnly: true },
    );
    expect(counts).toEqual([1, 1]);
    expect(await keys()).toEqual([1, 2]);
  });
});
