// maintenance.cleanup-old-sessions as a process against real rows: exactly the expired sessions
// go, in whole batches, and SIGTERM stops it between batches with exit 143.
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type pg from 'pg';
import { freshDatabase, migrated, testPool } from '../support/runner-db.ts';
import { closedPort } from '../support/runner-net.ts';
import { buildRunner, runRunner, startRunner } from '../support/runner-process.ts';

const TASK = 'maintenance.cleanup-old-sessions';
let url: string;
let db: pg.Pool;

beforeAll(async () => {
  buildRunner();
  url = await migrated(await freshDatabase(inject('pgUrl'), 'runner_cleanup_sessions'));
  db = testPool(url);
  await db.query("INSERT INTO users (email) VALUES ('ada@example.org')");
});
afterAll(async () => {
  await db.end();
});

beforeEach(async () => {
  await db.query('DROP TRIGGER IF EXISTS slow_delete ON user_sessions');
  await db.query('TRUNCATE user_sessions, task_runs');
});

/** `total` sessions; every other one expired an hour ago, the rest expire in an hour. */
async function seedSessions(total: number, expiredEvery = 2): Promise<Set<string>> {
  const { rows } = await db.query<{ id: string; expired: boolean }>(
    `INSERT INTO user_sessions (user_id, token, expires_at)
     SELECT (SELECT id FROM users LIMIT 1), 'token-' || g,
            now() + CASE WHEN g % $2 = 0 THEN interval '-1 hour' ELSE interval '1 hour' END
     FROM generate_series(1, $1) g
     RETURNING id, expires_at < now() AS expired`,
    [total, expiredEvery],
  );
  return new Set(rows.filter((r) => !r.expired).map((r) => r.id));
}

async function remainingIds(): Promise<Set<string>> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM user_sessions');
  return new Set(rows.map((r) => r.id));
}

describe(TASK, () => {
  it('deletes exactly the expired sessions of 10,000, in batches, and records the run', async () => {
    const live = await seedSessions(10_000);
    expect(live.size).toBe(5000);
    const exit = await runRunner(['run', TASK, '--params', '{"batchSize":1000}'], { DATABASE_URL: url, BGTASK_RUN_ID: 'cleanup-1' });
    expect(exit.code, exit.stdout).toBe(0);
    expect(await remainingIds()).toEqual(live);
    // Five full batches, then one that finds nothing left.
    expect(exit.result).toMatchObject({ outcome: 'Succeeded', summary: { sessions_cleaned: 5000, batches: 6 }, message: 'deleted 5000 expired sessions in 6 batches' });
    expect(exit.lines.filter((l) => l.msg === 'session batch deleted').map((l) => l.deleted)).toEqual([1000, 1000, 1000, 1000, 1000, 0]);
    const { rows } = await db.query('SELECT task, family, outcome, summary, error, finished_at >= started_at AS ordered FROM task_runs WHERE run_id = $1', ['cleanup-1']);
    expect(rows).toEqual([
      { task: TASK, family: 'maintenance', outcome: 'Succeeded', summary: { batches: 6, sessions_cleaned: 5000 }, error: null, ordered: true },
    ]);
  });

  it('stops after maxBatches and says more are pending', async () => {
    await seedSessions(1000);
    const exit = await runRunner(['run', TASK, '--params', '{"batchSize":100,"maxBatches":3}'], { DATABASE_URL: url });
    expect(exit.code).toBe(0);
    expect(exit.result?.summary).toEqual({ sessions_cleaned: 300, batches: 3, more_pending: true });
    expect(exit.result?.message).toBe('deleted 300 expired sessions, stopped after 3 batches; expired sessions remain for the next run');
    expect((await remainingIds()).size).toBe(700);
    const once = await runRunner(['run', TASK, '--params', '{"batchSize":100,"maxBatches":1}'], { DATABASE_URL: url });
    expect(once.result?.message).toBe('deleted 100 expired sessions, stopped after 1 batch; expired sessions remain for the next run');
  });

  it('changes nothing in a dry run', async () => {
    await seedSessions(400);
    const exit = await runRunner(['run', TASK, '--dry-run'], { DATABASE_URL: url, BGTASK_RUN_ID: 'dry' });
    expect(exit.code).toBe(0);
    expect(exit.result?.summary).toEqual({ sessions_expired: 200 });
    expect(exit.result?.message).toBe('dry run: 200 expired sessions would be deleted');
    expect((await remainingIds()).size).toBe(400);
    expect((await db.query('SELECT 1 FROM task_runs')).rowCount).toBe(0);
  });

  it('on SIGTERM mid-batch, finishes that batch whole, stops, and exits 143', async () => {
    await seedSessions(3000, 1); // all expired
    // Each deleted row takes 2 ms, so a batch of 200 takes about 0.4 s: SIGTERM lands inside one.
    await db.query(`CREATE OR REPLACE FUNCTION slow_delete() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(0.002); RETURN OLD; END $$`);
    await db.query('CREATE TRIGGER slow_delete BEFORE DELETE ON user_sessions FOR EACH ROW EXECUTE FUNCTION slow_delete()');
    const runner = startRunner(['run', TASK, '--params', '{"batchSize":200}'], { DATABASE_URL: url, BGTASK_RUN_ID: 'cleanup-term' });
    await runner.waitForLine((l) => l.msg === 'session batch deleted');
    await new Promise((r) => setTimeout(r, 150));
    runner.child.kill('SIGTERM');
    const exit = await runner.exit;
    expect(exit.code, exit.stdout).toBe(143);
    const cleaned = exit.result?.summary?.sessions_cleaned as number;
    expect(exit.result).toMatchObject({ outcome: 'Interrupted', message: 'received SIGTERM: stopped at a safe point' });
    expect(cleaned).toBeGreaterThanOrEqual(200);
    expect(cleaned).toBeLessThan(3000);
    expect(cleaned % 200).toBe(0);
    expect((await remainingIds()).size).toBe(3000 - cleaned);
    const { rows } = await db.query('SELECT outcome, summary FROM task_runs WHERE run_id = $1', ['cleanup-term']);
    expect(rows).toEqual([{ outcome: 'Interrupted', summary: exit.result?.summary }]);
  });

  it('when a batch outlasts the abort grace, exits 143 anyway and leaves only whole batches', async () => {
    await seedSessions(600, 1);
    // One batch of 300 takes about 3 s; the runner waits 0.5 s after SIGTERM, then reports and exits.
    await db.query(`CREATE OR REPLACE FUNCTION slow_delete() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(0.01); RETURN OLD; END $$`);
    await db.query('CREATE TRIGGER slow_delete BEFORE DELETE ON user_sessions FOR EACH ROW EXECUTE FUNCTION slow_delete()');
    const runner = startRunner(['run', TASK, '--params', '{"batchSize":300}'], { DATABASE_URL: url, BGTASK_ABORT_GRACE_SECONDS: '0.5' });
    await runner.waitForLine((l) => l.msg === 'run started');
    await new Promise((r) => setTimeout(r, 500));
    runner.child.kill('SIGTERM');
    const exit = await runner.exit;
    expect(exit.code).toBe(143);
    expect(exit.result?.message).toBe('received SIGTERM: the task did not stop within 0.5s of the abort');
    // The batch in flight ends on the server, committed or rolled back, but never in part.
    await waitUntil(async () => (await db.query("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'bgtask %' AND state = 'active'")).rowCount === 0);
    expect([0, 300, 600]).toContain(600 - (await remainingIds()).size);
  });

  it('exits 1 with the cause when Postgres is down, and writes nothing', async () => {
    await seedSessions(100);
    const port = await closedPort();
    const exit = await runRunner(['run', TASK], { DATABASE_URL: `postgres://postgres:x@127.0.0.1:${port}/postgres` });
    expect(exit.code).toBe(1);
    expect(exit.result?.outcome).toBe('Failed');
    expect(exit.result?.message).toContain(`connect ECONNREFUSED 127.0.0.1:${port}`);
    expect(exit.lines.some((l) => l.level === 'error' && String(l.msg).startsWith('could not record the run in task_runs'))).toBe(true);
    expect((await remainingIds()).size).toBe(100);
  });
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
