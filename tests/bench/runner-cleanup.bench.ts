// maintenance.cleanup-old-sessions on 1,000,000 expired sessions in the host Postgres, with its
// default batch size: rows per second, and the longest transaction as Postgres itself timed it.
// Each batch is one statement in its own implicit transaction; with log_min_duration_statement = 0
// for the bench database the server logs the parse, bind and execute durations of every batch,
// and their sum is the batch's transaction up to its commit (asynchronous here: the host server
// runs with synchronous_commit off, so the commit adds no disk wait). Budget: longest ≤ 250 ms.
import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { report } from '../support/bench-report.ts';
import { HOST_SERVICES_PARENT } from '../support/host-services.ts';
import { freshDatabase, migrated, testPool } from '../support/runner-db.ts';
import { buildRunner, runRunner } from '../support/runner-process.ts';

const TASK = 'maintenance.cleanup-old-sessions';
const ROWS = 1_000_000;
const DATABASE = 'bench_cleanup_sessions';
let url: string;
let db: pg.Pool;

beforeAll(async () => {
  buildRunner();
  url = await migrated(await freshDatabase(inject('pgUrl'), DATABASE));
  db = testPool(url);
});

afterAll(async () => {
  await db?.end();
  // Leaves an empty database, not a million dead rows, on the shared host server.
  await freshDatabase(inject('pgUrl'), DATABASE);
});

/** The host server's log: host-services starts it with stderr to <run dir>/postgres.log, beside <run dir>/postgres/data. */
async function serverLog(): Promise<string> {
  const { rows } = await db.query<{ data_directory: string }>('SHOW data_directory');
  const file = join(dirname(dirname(rows[0]!.data_directory)), 'postgres.log');
  if (!file.startsWith(HOST_SERVICES_PARENT) || !existsSync(file)) throw new Error(`the host Postgres log is not where host-services puts it: ${file}`);
  return file;
}

function readFrom(file: string, offset: number): string {
  const size = statSync(file).size;
  const buffer = Buffer.alloc(size - offset);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buffer, 0, buffer.length, offset);
  } finally {
    closeSync(fd);
  }
  return buffer.toString('utf8');
}

/**
 * The duration of each DELETE batch, in ms, from the server log: the parse, bind and execute
 * entries of one backend's extended-protocol statement, summed.
 */
function batchDurations(log: string): number[] {
  const entry = /^\S+ \S+ \S+ \[(\d+)\] LOG:  duration: ([\d.]+) ms  (parse|bind|execute) <unnamed>: ([\s\S]*?)(?=^\S+ \S+ \S+ \[\d+\] |(?![\s\S]))/gm;
  const open = new Map<string, number>();
  const batches: number[] = [];
  for (const m of log.matchAll(entry)) {
    const [, pid, ms, phase, text] = m as unknown as [string, string, string, string, string];
    if (!text.includes('DELETE FROM user_sessions')) continue;
    const sum = (open.get(pid) ?? 0) + Number(ms);
    if (phase === 'execute') {
      batches.push(sum);
      open.delete(pid);
    } else {
      open.set(pid, sum);
    }
  }
  return batches;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

describe(TASK, () => {
  it(`deletes ${ROWS.toLocaleString('en')} expired sessions in default-size batches`, async () => {
    await db.query("INSERT INTO users (email) VALUES ('bench@example.org')");
    const seedStart = performance.now();
    // Expiry times spread over ~3 h, all in the past: the batches walk the expires_at index.
    await db.query(
      `INSERT INTO user_sessions (user_id, token, expires_at)
       SELECT u.id, 'bench-' || g, now() - interval '1 day' + g * interval '10 milliseconds'
       FROM generate_series(1, $1) g, (SELECT id FROM users LIMIT 1) u`,
      [ROWS],
    );
    const seedMs = performance.now() - seedStart;
    // As autovacuum would have by the time sessions expire: visibility map and statistics current.
    await db.query('VACUUM ANALYZE user_sessions');
    await db.query(`ALTER DATABASE ${DATABASE} SET log_min_duration_statement = 0`);

    const logFile = await serverLog();
    const offset = statSync(logFile).size;
    // maxBatches is only a cap, above the 1,001 batches the run needs (the last one finds nothing).
    const started = performance.now();
    const exit = await runRunner(['run', TASK, '--params', JSON.stringify({ maxBatches: 2000 })], { DATABASE_URL: url, BGTASK_RUN_ID: 'bench' });
    const wallMs = performance.now() - started;
    await db.query(`ALTER DATABASE ${DATABASE} RESET log_min_duration_statement`);

    expect(exit.code, exit.stdout + exit.stderr).toBe(0);
    expect(exit.result?.summary).toEqual({ sessions_cleaned: ROWS, batches: ROWS / 1000 + 1 });
    expect((await db.query('SELECT 1 FROM user_sessions LIMIT 1')).rowCount).toBe(0);
    const durations = batchDurations(readFrom(logFile, offset));
    // Every batch the task ran is in the log, so the longest one cannot have been missed.
    expect(durations).toHaveLength(ROWS / 1000 + 1);

    const taskSeconds = exit.result!.durationSeconds!;
    const longest = Math.max(...durations);
    report(`${TASK}: ${ROWS.toLocaleString('en')} expired sessions, batchSize 1000 (host Postgres 15)`, [
      ['seeding (one INSERT … SELECT generate_series)', `${(seedMs / 1000).toFixed(1)} s`],
      ['run duration (status.lastRun.durationSeconds)', `${taskSeconds.toFixed(2)} s`],
      ['rows/s over the run', Math.round(ROWS / taskSeconds).toLocaleString('en')],
      ['process wall time (start-up and exit included)', `${(wallMs / 1000).toFixed(2)} s`],
      ['batches (transactions) timed by Postgres', durations.length],
      ['transaction median / p99', `${quantile(durations, 0.5).toFixed(1)} ms / ${quantile(durations, 0.99).toFixed(1)} ms`],
      ['longest transaction (budget ≤ 250 ms)', `${longest.toFixed(1)} ms (batch ${durations.indexOf(longest) + 1})`],
      // Whether batches slow down as deleted rows pile up in the index before vacuum.
      ['median of the first / last 100 batches', `${quantile(durations.slice(0, 100), 0.5).toFixed(1)} ms / ${quantile(durations.slice(-100), 0.5).toFixed(1)} ms`],
    ]);
  });
});
