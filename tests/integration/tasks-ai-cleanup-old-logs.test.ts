// ai.cleanup-old-logs as a process: task_runs past the retention go in batches, and rotated log
// files past their age go from the log directory, never the live log, never through a symlink; a
// run stopped mid-sweep reports the files it removed.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type pg from 'pg';
import { freshDatabase, migrated, testPool } from '../support/runner-db.ts';
import { buildRunner, runRunner, startRunner, stopAtFirstRemoval } from '../support/runner-process.ts';

const TASK = 'ai.cleanup-old-logs';
let url: string;
let db: pg.Pool;
let base: string;
let logs: string;

beforeAll(async () => {
  buildRunner();
  url = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_cleanup_logs'));
  db = testPool(url);
});
afterAll(async () => {
  await db.end();
});
beforeEach(async () => {
  await db.query('TRUNCATE task_runs');
  base = mkdtempSync(join(tmpdir(), 'tasks-logs-'));
  logs = join(base, 'logs');
  mkdirSync(logs);
  return () => rmSync(base, { recursive: true, force: true });
});

const DAY = 86_400_000;
function logFile(name: string, ageDays: number, dir = logs): string {
  const path = join(dir, name);
  writeFileSync(path, 'log line\n'.repeat(10));
  const t = new Date(Date.now() - ageDays * DAY);
  utimesSync(path, t, t);
  return path;
}
async function seedRuns(old: number, recent: number): Promise<void> {
  await db.query(
    `INSERT INTO task_runs (run_id, task, family, trigger, attempt, outcome, started_at, finished_at)
     SELECT 'run-' || g, 'x.y', 'ai', 'Schedule', 1, 'Succeeded', t, t
     FROM generate_series(1, $1::int + $2::int) g, LATERAL (SELECT now() - CASE WHEN g <= $1::int THEN interval '40 days' ELSE interval '2 days' END AS t) s`,
    [old, recent],
  );
}

describe(TASK, () => {
  it('deletes task_runs older than the retention in batches and keeps the rest', async () => {
    await seedRuns(2500, 300);
    const exit = await runRunner(['run', TASK, '--params', '{"batchSize":1000}'], { DATABASE_URL: url });
    expect(exit.code, exit.stdout).toBe(0);
    // 2500 deleted; the run records itself afterwards.
    expect(exit.result?.summary).toMatchObject({ task_runs_deleted: 2500, log_dir: 'none' });
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM task_runs WHERE task = 'x.y'");
    expect(rows[0]!.n).toBe(300);
  });

  it('stops after maxBatches, says more is pending, and the next run goes on from there', async () => {
    await seedRuns(2500, 300);
    const first = await runRunner(['run', TASK, '--params', '{"batchSize":1000,"maxBatches":2}'], { DATABASE_URL: url });
    expect(first.code, first.stdout).toBe(0);
    expect(first.result?.summary).toMatchObject({ task_runs_deleted: 2000, more_pending: true });
    const left = async () => (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM task_runs WHERE task = 'x.y'")).rows[0]!.n;
    expect(await left()).toBe(800); // 500 old, 300 recent
    const second = await runRunner(['run', TASK, '--params', '{"batchSize":1000,"maxBatches":2}'], { DATABASE_URL: url });
    expect(second.result?.summary).toMatchObject({ task_runs_deleted: 500 });
    expect(second.result?.summary).not.toHaveProperty('more_pending');
    expect(await left()).toBe(300);
  });

  it('removes rotated log files past their age, never the live log or a symlink target', async () => {
    const outside = join(base, 'outside');
    mkdirSync(outside);
    const target = logFile('precious.log.1', 90, outside);
    symlinkSync(target, join(logs, 'linked.log.3'));
    const old = [logFile('app.log.1', 40), logFile('app.log.2.gz', 45), logFile('app.log-20240101.gz', 60), logFile('worker.2024-01-01.log', 50)];
    const kept = [logFile('app.log', 100), logFile('app.log.3', 5), logFile('notes.txt', 100)];
    const exit = await runRunner(['run', TASK, '--params', JSON.stringify({ logDir: logs, logMaxAgeDays: 30 })], { DATABASE_URL: url, BGTASK_FILE_ROOTS: base });
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ log_files_removed: 4, log_bytes_freed: 4 * 90 });
    for (const f of old) expect(existsSync(f), f).toBe(false);
    for (const f of kept) expect(existsSync(f), f).toBe(true);
    expect(existsSync(target)).toBe(true); // the link is new (kept); its old target is never looked at
  });

  it('stopped mid-sweep (SIGTERM), exits 143 and reports and records exactly the log files it removed until then', async () => {
    // Enough files that the sweep is still going when the signal lands.
    const n = 20_000;
    for (let i = 1; i <= n; i++) logFile(`app.log.${i}`, 40);
    const runner = startRunner(['run', TASK, '--params', JSON.stringify({ logDir: logs })], { DATABASE_URL: url, BGTASK_FILE_ROOTS: base, BGTASK_RUN_ID: 'logs-term' });
    const exit = await stopAtFirstRemoval(runner, logs);
    expect(exit.code, exit.stdout).toBe(143);
    expect(exit.result).toMatchObject({ outcome: 'Interrupted', message: 'received SIGTERM: stopped at a safe point' });
    const removed = n - readdirSync(logs).length;
    expect(removed).toBeGreaterThan(0);
    expect(removed).toBeLessThan(n);
    expect(exit.result?.summary).toMatchObject({ log_files_removed: removed, log_bytes_freed: removed * 90 });
    const { rows } = await db.query('SELECT outcome, summary FROM task_runs WHERE run_id = $1', ['logs-term']);
    expect(rows).toEqual([{ outcome: 'Interrupted', summary: exit.result?.summary }]);
  });

  it('refuses a log directory outside BGTASK_FILE_ROOTS with exit 2, deleting nothing', async () => {
    await seedRuns(10, 0);
    const exit = await runRunner(['run', TASK, '--params', JSON.stringify({ logDir: logs })], { DATABASE_URL: url, BGTASK_FILE_ROOTS: join(base, 'other') });
    expect(exit.code).toBe(2);
    expect(exit.result?.message).toContain(`log directory ${logs} is outside the allowed roots`);
    expect((await db.query("SELECT 1 FROM task_runs WHERE task = 'x.y'")).rowCount).toBe(10);
  });
});
