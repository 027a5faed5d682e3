// email.send-daily-summary as a process: one e-mail per opted-in user with yesterday's runs and AI
// results and today's events in the user's time zone, from localHour on there, sent once per user
// and local day even when the run is retried after a partial failure or the user's zone changes,
// with up to maxConnections messages on their way at once, and a stop leaving no claim half-done.
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type pg from 'pg';
import { startFakeSmtp, type FakeSmtp } from '../support/fake-smtp.ts';
import { clearOfLocalHourChange, clearOfLocalMidnight } from '../support/local-midnight.ts';
import { freshDatabase, migrated, testPool } from '../support/runner-db.ts';
import { closedPort } from '../support/runner-net.ts';
import { buildRunner, runRunner, startRunner } from '../support/runner-process.ts';

const TASK = 'email.send-daily-summary';
let url: string;
let db: pg.Pool;
let smtp: FakeSmtp;
let ada: string;
let bob: string;

beforeAll(async () => {
  // The fixtures are yesterday's and today's in Ada's and Bob's zones: the file runs within one day
  // of theirs, and of UTC's (the zone of the users withMoreUsers adds, sent to twice in a day).
  await clearOfLocalMidnight(['Europe/Berlin', 'America/New_York', 'UTC'], 3 * 60_000);
  buildRunner();
  url = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_daily_summary'));
  db = testPool(url);
  smtp = await startFakeSmtp();
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO users (email, display_name, timezone, daily_summary_opt_in) VALUES
     ('ada@example.org', 'Ada', 'Europe/Berlin', true), ('bob@example.org', 'Bob', 'America/New_York', true), ('cy@example.org', 'Cy', 'UTC', false)
     RETURNING id`,
  );
  [ada, bob] = [rows[0]!.id, rows[1]!.id];
  // Relative to each user's own day: yesterday noon and today 15:00, local time.
  const localDay = (user: string, days: number, time: string) =>
    `((date_trunc('day', now() AT TIME ZONE (SELECT timezone FROM users WHERE id = ${user})) + interval '${days} days' + time '${time}') AT TIME ZONE (SELECT timezone FROM users WHERE id = ${user}))`;
  await db.query(
    `INSERT INTO task_runs (run_id, task, family, trigger, attempt, outcome, started_at, finished_at) VALUES
     ('y1', 'sync.calendar-events', 'sync', 'Schedule', 1, 'Succeeded', ${localDay(ada, -1, '12:00')}, ${localDay(ada, -1, '12:01')}),
     ('y2', 'sync.calendar-events', 'sync', 'Schedule', 1, 'Failed', ${localDay(ada, -1, '13:00')}, ${localDay(ada, -1, '13:01')}),
     ('old', 'sync.calendar-events', 'sync', 'Schedule', 1, 'Succeeded', ${localDay(ada, -3, '12:00')}, ${localDay(ada, -3, '12:01')})`,
  );
  const { rows: tasks } = await db.query<{ id: string }>(`INSERT INTO ai_tasks (user_id, title, schedule_type) VALUES ($1, 'News digest', 'once') RETURNING id`, [ada]);
  await db.query(
    `INSERT INTO ai_task_results (ai_task_id, user_id, run_id, status, result, created_at) VALUES ($1, $2, 'r', 'succeeded', 'Three headlines.', ${localDay(ada, -1, '09:00')})`,
    [tasks[0]!.id, ada],
  );
  await db.query(
    `INSERT INTO calendar_events (user_id, calendar_id, uid, summary, location, starts_at, ends_at, status) VALUES
     ($1, 'default', 'e1', 'Dentist', 'Main St', ${localDay(ada, 0, '15:00')}, ${localDay(ada, 0, '16:00')}, 'confirmed'),
     ($1, 'default', 'e2', 'Cancelled thing', NULL, ${localDay(ada, 0, '17:00')}, ${localDay(ada, 0, '18:00')}, 'cancelled'),
     ($1, 'default', 'e3', 'Tomorrow thing', NULL, ${localDay(ada, 1, '10:00')}, ${localDay(ada, 1, '11:00')}, 'confirmed'),
     ($1, 'default', 'e4', 'Yesterday till midnight', NULL, ${localDay(ada, -1, '22:00')}, ${localDay(ada, 0, '00:00')}, 'confirmed'),
     ($1, 'default', 'e5', 'Midnight start', NULL, ${localDay(ada, 0, '00:00')}, ${localDay(ada, 0, '00:00')}, 'confirmed')`,
    [ada],
  );
});
afterAll(async () => {
  await smtp.close();
  await db.end();
});
beforeEach(async () => {
  await db.query('TRUNCATE daily_summary_deliveries');
  smtp.received.length = 0;
  smtp.behaviour = {};
});

/** Runs `fn` with `n` more opted-in users (in UTC), removed again after it. */
async function withMoreUsers(n: number, fn: () => Promise<void>): Promise<void> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO users (email, timezone, daily_summary_opt_in) SELECT 'user' || g || '@example.org', 'UTC', true FROM generate_series(1, $1::int) g RETURNING id`,
    [n],
  );
  try {
    await fn();
  } finally {
    await db.query('DELETE FROM users WHERE id = ANY($1::bigint[])', [rows.map((u) => u.id)]);
  }
}

/** Runs `fn` with one more opted-in user in each of `zones`, removed again after it. */
async function withUsersIn(zones: string[], fn: (ids: string[]) => Promise<void>): Promise<void> {
  const ids: string[] = [];
  try {
    for (const [i, zone] of zones.entries()) {
      const { rows } = await db.query<{ id: string }>('INSERT INTO users (email, timezone, daily_summary_opt_in) VALUES ($1, $2, true) RETURNING id', [`zoned${i + 1}@example.org`, zone]);
      ids.push(rows[0]!.id);
    }
    await fn(ids);
  } finally {
    await db.query('DELETE FROM users WHERE id = ANY($1::bigint[])', [ids]);
  }
}

/** `run` of the task; localHour 0 makes every user due at any time of day, unless a test sets its own. */
const runArgs = (params: Record<string, unknown> = {}) => ['run', TASK, '--params', JSON.stringify({ localHour: 0, ...params })];
const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: url, SMTP_URL: smtp.url, EMAIL_FROM: 'Assistant <assistant@bgtask.example>', ...extra });
const localDate = async (user: string) =>
  (await db.query<{ d: string }>("SELECT to_char(now() AT TIME ZONE timezone, 'YYYY-MM-DD') AS d FROM users WHERE id = $1", [user])).rows[0]!.d;
const dateIn = async (zone: string) => (await db.query<{ d: string }>("SELECT to_char(now() AT TIME ZONE $1, 'YYYY-MM-DD') AS d", [zone])).rows[0]!.d;

describe(TASK, () => {
  it("sends each opted-in user yesterday's runs and AI results and today's events, in their time zone", async () => {
    const exit = await runRunner(runArgs(), env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ users: 2, summaries_sent: 2, already_sent: 0, summaries_failed: 0 });
    expect(smtp.received.map((m) => m.to[0]).sort()).toEqual(['ada@example.org', 'bob@example.org']);
    const mail = smtp.received.find((m) => m.to[0] === 'ada@example.org')!;
    const date = await localDate(ada);
    expect(mail.messageId).toBe(`<daily-summary-${ada}-${date}@bgtask.example>`);
    expect(mail.subject).toBe(`Your day, ${date}`);
    const body = mail.raw.replace(/=\r?\n/g, '');
    expect(body).toContain('15:00=E2=80=9316:00  Dentist (Main St)');
    expect(body).not.toContain('Cancelled thing');
    expect(body).not.toContain('Tomorrow thing');
    // An end is exclusive (iCalendar's DTEND): what ended at midnight was yesterday's.
    expect(body).not.toContain('Yesterday till midnight');
    expect(body).toContain('Midnight start');
    expect(body).toContain('News digest: Three headlines.');
    expect(body).toContain("Yesterday's background runs (2):");
    expect(body).toContain('sync.calendar-events: 1 failed');
    const { rows } = await db.query('SELECT user_id, status, summary_date::text AS d, attempts FROM daily_summary_deliveries ORDER BY user_id');
    expect(rows).toEqual([
      { user_id: ada, status: 'sent', d: date, attempts: 1 },
      { user_id: bob, status: 'sent', d: await localDate(bob), attempts: 1 },
    ]);
  });

  it('sends nothing twice when run again the same day', async () => {
    expect((await runRunner(runArgs(), env())).code).toBe(0);
    const again = await runRunner(runArgs(), env());
    expect(again.code, again.stdout).toBe(0);
    expect(again.result?.summary).toMatchObject({ summaries_sent: 0, already_sent: 2 });
    expect(smtp.received).toHaveLength(2);
  });

  it('on a retry after a partial failure, sends only to the users who did not get theirs', async () => {
    smtp.behaviour = { refuseRecipient: (a) => (a === 'bob@example.org' ? { code: 452, message: 'mailbox full, try later' } : undefined) };
    const first = await runRunner(runArgs(), env());
    expect(first.code, first.stdout).toBe(1);
    expect(first.result?.message).toContain(`1 of 2 daily summaries failed: user ${bob}:`);
    expect(first.result?.message).toContain('mailbox full, try later');
    expect(smtp.received.map((m) => m.to[0])).toEqual(['ada@example.org']);
    smtp.behaviour = {};
    const retry = await runRunner(runArgs(), { ...env(), BGTASK_TRIGGER: 'Retry', BGTASK_ATTEMPT: '2' });
    expect(retry.code, retry.stdout).toBe(0);
    expect(retry.result?.summary).toMatchObject({ summaries_sent: 1, already_sent: 1 });
    expect(smtp.received.map((m) => m.to[0])).toEqual(['ada@example.org', 'bob@example.org']);
    const { rows } = await db.query('SELECT status, attempts FROM daily_summary_deliveries WHERE user_id = $1', [bob]);
    expect(rows).toEqual([{ status: 'sent', attempts: 2 }]);
  });

  it('records a 5xx refusal for good: not sent again on a retry, and not failing the run', async () => {
    const refusals: string[] = [];
    smtp.behaviour = {
      refuseRecipient: (a) => (a === 'bob@example.org' ? (refusals.push(a), { code: 550, message: 'no such user here' }) : undefined),
    };
    const first = await runRunner(runArgs(), env());
    expect(first.code, first.stdout).toBe(0);
    expect(first.result?.summary).toMatchObject({ summaries_sent: 1, summaries_refused: 1, summaries_failed: 0 });
    expect(first.result?.message).toMatch(new RegExp(`^sent 1 daily summary \\(or had sent them already\\); refused for good by the mail server, not retried: user ${bob}: .*550 no such user here`));
    const { rows } = await db.query('SELECT status, attempts, last_error FROM daily_summary_deliveries WHERE user_id = $1', [bob]);
    expect(rows).toEqual([{ status: 'refused', attempts: 1, last_error: expect.stringContaining('550 no such user here') }]);

    // A retry (or the next run that day) leaves it alone: the server would answer the same.
    const retry = await runRunner(runArgs(), { ...env(), BGTASK_TRIGGER: 'Retry', BGTASK_ATTEMPT: '2' });
    expect(retry.code, retry.stdout).toBe(0);
    expect(retry.result?.summary).toMatchObject({ summaries_sent: 0, already_sent: 1, refused_earlier: 1, claimed_elsewhere: 0 });
    expect(refusals).toEqual(['bob@example.org']);
    expect(smtp.received.map((m) => m.to[0])).toEqual(['ada@example.org']);
  });

  it('fails, and retries, when the server refuses to relay (5.7.1 names the recipient, but it is a configuration to fix)', async () => {
    smtp.behaviour = { refuseRecipient: () => ({ code: 554, message: '5.7.1 Relay access denied' }) };
    const first = await runRunner(runArgs(), env());
    expect(first.code, first.stdout).toBe(1);
    expect(first.result?.summary).toMatchObject({ summaries_sent: 0, summaries_refused: 0, summaries_failed: 2 });
    expect((await db.query('SELECT DISTINCT status FROM daily_summary_deliveries')).rows).toEqual([{ status: 'failed' }]);
  });

  it('gives a failing user up for the day after maxAttempts sends, without failing the runs after that', async () => {
    smtp.behaviour = { refuseRecipient: (a) => (a === 'bob@example.org' ? { code: 452, message: 'mailbox full, try later' } : undefined) };
    for (const attempt of [1, 2]) {
      const run = await runRunner(runArgs({ maxAttempts: 2 }), env());
      expect(run.code, `run ${attempt}: ${run.stdout}`).toBe(1);
      expect(run.result?.summary).toMatchObject({ summaries_failed: 1, summaries_given_up: 0 });
    }
    const third = await runRunner(runArgs({ maxAttempts: 2 }), env());
    expect(third.code, third.stdout).toBe(0);
    expect(third.result?.summary).toMatchObject({ summaries_sent: 0, already_sent: 1, summaries_failed: 0, summaries_given_up: 1 });
    expect(third.result?.message).toContain(`given up for today after 2 attempts: user ${bob} (2 attempts, last: `);
    expect(third.result?.message).toContain('mailbox full, try later');
    expect(smtp.received.map((m) => m.to[0]).filter((to) => to === 'bob@example.org')).toEqual([]);
    const { rows } = await db.query('SELECT status, attempts FROM daily_summary_deliveries WHERE user_id = $1', [bob]);
    expect(rows).toEqual([{ status: 'failed', attempts: 2 }]);
  });

  it('fails, and retries, when the server refuses the sender (a configuration to fix, not a user to give up on)', async () => {
    smtp.behaviour = { refuseSender: () => ({ code: 553, message: 'sender address not owned by user' }) };
    const first = await runRunner(runArgs(), env());
    expect(first.code, first.stdout).toBe(1);
    expect(first.result?.summary).toMatchObject({ summaries_sent: 0, summaries_refused: 0, summaries_failed: 2 });
    const { rows } = await db.query('SELECT DISTINCT status FROM daily_summary_deliveries');
    expect(rows).toEqual([{ status: 'failed' }]);
    // The sender fixed: the retry sends both.
    smtp.behaviour = {};
    const retry = await runRunner(runArgs(), { ...env(), BGTASK_TRIGGER: 'Retry', BGTASK_ATTEMPT: '2' });
    expect(retry.code, retry.stdout).toBe(0);
    expect(retry.result?.summary).toMatchObject({ summaries_sent: 2 });
  });

  it("fails while another run's claim is fresh (it may have died mid-send), and takes the claim over once it is old", async () => {
    const date = await localDate(ada);
    await db.query("INSERT INTO daily_summary_deliveries (user_id, summary_date, status, message_id, claimed_at) VALUES ($1, $2, 'sending', 'x', now() - interval '5 minutes')", [ada, date]);
    const first = await runRunner(runArgs(), env());
    expect(first.code, first.stdout).toBe(1);
    expect(first.result?.summary).toMatchObject({ summaries_sent: 1, claimed_elsewhere: 1, already_sent: 0 });
    // A claim from before leases were stored lasts the task's default timeout, 15 minutes.
    const { rows: [claim] } = await db.query<{ ends: Date }>("SELECT claimed_at + interval '15 minutes' AS ends FROM daily_summary_deliveries WHERE user_id = $1", [ada]);
    expect(first.result?.message).toBe(`the daily summaries of users ${ada} are claimed by another run, which may have died; a retry takes them over once their claims' leases end (at ${claim!.ends.toISOString()} at the latest)`);
    expect(smtp.received.map((m) => m.to[0])).toEqual(['bob@example.org']);

    await db.query("UPDATE daily_summary_deliveries SET claimed_at = now() - interval '16 minutes' WHERE user_id = $1", [ada]);
    const retry = await runRunner(runArgs(), { ...env(), BGTASK_TRIGGER: 'Retry', BGTASK_ATTEMPT: '2' });
    expect(retry.code, retry.stdout).toBe(0);
    expect(retry.result?.summary).toMatchObject({ summaries_sent: 1, already_sent: 1, claimed_elsewhere: 0 });
    expect(smtp.received.map((m) => m.to[0])).toEqual(['bob@example.org', 'ada@example.org']);
  });

  it("keeps another run's claim for that run's lifetime, and stores its own run's", async () => {
    const date = await localDate(ada);
    // Claimed 20 minutes ago by a run whose Job may last an hour: past the default 15 minutes, still alive.
    await db.query("INSERT INTO daily_summary_deliveries (user_id, summary_date, status, message_id, claimed_at, lease_expires_at) VALUES ($1, $2, 'sending', 'x', now() - interval '20 minutes', now() + interval '40 minutes')", [ada, date]);
    const first = await runRunner(runArgs(), env({ BGTASK_TIMEOUT_SECONDS: '1200' }));
    expect(first.code, first.stdout).toBe(1);
    expect(first.result?.summary).toMatchObject({ summaries_sent: 1, claimed_elsewhere: 1 });
    expect(smtp.received.map((m) => m.to[0])).toEqual(['bob@example.org']);
    // Bob's claim, this run's: its deadline plus the pod's 30 s to stop.
    const { rows } = await db.query<{ seconds: number }>('SELECT extract(epoch FROM lease_expires_at - claimed_at)::int AS seconds FROM daily_summary_deliveries WHERE user_id = $1', [bob]);
    expect(rows).toEqual([{ seconds: 1230 }]);

    await db.query("UPDATE daily_summary_deliveries SET lease_expires_at = now() - interval '1 second' WHERE user_id = $1", [ada]);
    const retry = await runRunner(runArgs(), { ...env(), BGTASK_TRIGGER: 'Retry', BGTASK_ATTEMPT: '2' });
    expect(retry.code, retry.stdout).toBe(0);
    expect(retry.result?.summary).toMatchObject({ summaries_sent: 1, already_sent: 1, claimed_elsewhere: 0 });
  });

  it('keeps up to maxConnections messages on their way at once', async () => {
    await withMoreUsers(10, async () => {
      // Messages on their way: the server has taken their RCPT TO and not yet answered their DATA
      // (it does dataDelayMs later). Sent one by one, there is never more than one.
      let rcpts = 0;
      let most = 0;
      smtp.behaviour = {
        dataDelayMs: 200,
        refuseRecipient: () => {
          rcpts++;
          most = Math.max(most, rcpts - smtp.received.length);
          return undefined;
        },
      };
      const exit = await runRunner(runArgs({ maxConnections: 4 }), env());
      expect(exit.code, exit.stdout).toBe(0);
      expect(exit.result?.summary).toMatchObject({ users: 12, summaries_sent: 12, summaries_failed: 0, claimed_elsewhere: 0 });
      expect(smtp.received).toHaveLength(12);
      expect(new Set(smtp.received.map((m) => m.messageId)).size).toBe(12);
      expect(most).toBeGreaterThan(1);
      expect(most).toBeLessThanOrEqual(4);
      const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM daily_summary_deliveries WHERE status = 'sent' AND attempts = 1");
      expect(rows[0]!.n).toBe(12);
    });
  });

  it('on SIGTERM, takes no further user, settles the ones on their way, exits 143; the next run sends the rest', async () => {
    await withMoreUsers(20, async () => {
      smtp.behaviour = { dataDelayMs: 200 };
      const runner = startRunner(runArgs({ maxConnections: 3 }), env());
      const deadline = Date.now() + 30_000;
      while (smtp.received.length < 3) {
        if (Date.now() > deadline || runner.child.exitCode !== null) throw new Error(`no summary sent:\n${runner.lines.map((l) => JSON.stringify(l)).join('\n')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      runner.child.kill('SIGTERM');
      const exit = await runner.exit;
      expect(exit.code, exit.stdout).toBe(143);
      expect(exit.result).toMatchObject({ outcome: 'Interrupted', message: 'received SIGTERM: stopped at a safe point' });
      const sentFirst = smtp.received.length;
      expect(sentFirst).toBeLessThan(22);
      expect(exit.result?.summary).toMatchObject({ summaries_sent: sentFirst, summaries_failed: 0 });
      // Every claim taken was settled: none is left 'sending' for a retry to wait out.
      const { rows } = await db.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM daily_summary_deliveries GROUP BY status');
      expect(rows).toEqual([{ status: 'sent', n: sentFirst }]);

      smtp.behaviour = {};
      const rest = await runRunner(runArgs({ maxConnections: 3 }), env());
      expect(rest.code, rest.stdout).toBe(0);
      expect(rest.result?.summary).toMatchObject({ summaries_sent: 22 - sentFirst, already_sent: sentFirst });
      expect(new Set(smtp.received.map((m) => m.messageId)).size).toBe(22);
      expect(smtp.received).toHaveLength(22);
    });
  });

  it('exits 1 when SMTP is down and sends everything on the retry', async () => {
    const port = await closedPort();
    const down = await runRunner(runArgs(), env({ SMTP_URL: `smtp://127.0.0.1:${port}` }));
    expect(down.code).toBe(1);
    expect(down.result?.message).toContain('the SMTP server is unavailable');
    expect(down.result?.message).toContain('ECONNREFUSED');
    // The failed claims given back without their leases (a runner from before migration 0014 must not inherit them).
    const { rows } = await db.query("SELECT status, lease_expires_at FROM daily_summary_deliveries WHERE status <> 'sent'");
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r).toEqual({ status: 'failed', lease_expires_at: null });
    const retry = await runRunner(runArgs(), env());
    expect(retry.code, retry.stdout).toBe(0);
    expect(smtp.received).toHaveLength(2);
  });

  it("sends to the users whose own clock has reached localHour, to the others at a run after theirs, each once", async () => {
    await withUsersIn(['Asia/Tokyo', 'America/Los_Angeles'], async () => {
      // The users' hours are read, then the runs see them: the hour must not change in between.
      await clearOfLocalHourChange(['Europe/Berlin', 'America/New_York', 'Asia/Tokyo', 'America/Los_Angeles'], 60_000);
      const { rows: users } = await db.query<{ id: string; email: string; hour: number }>(
        'SELECT id, email, extract(hour FROM now() AT TIME ZONE timezone)::int AS hour FROM users WHERE daily_summary_opt_in ORDER BY id',
      );
      // No two of the four zones are a multiple of 24 hours apart: four different hours, at any
      // time of day. localHour at the latest makes its user due and the other three not yet.
      expect(new Set(users.map((u) => u.hour)).size).toBe(4);
      const latest = Math.max(...users.map((u) => u.hour));
      const hh = String(latest).padStart(2, '0');

      const dry = await runRunner([...runArgs({ localHour: latest }), '--dry-run'], env());
      expect(dry.code, dry.stdout).toBe(0);
      expect(dry.result?.message).toBe(`dry run: up to 1 summary would be sent; 3 users not due yet (before ${hh}:00 their time)`);
      expect(dry.result?.summary).toMatchObject({ users: 4, not_due_yet: 3 });

      const first = await runRunner(runArgs({ localHour: latest }), env());
      expect(first.code, first.stdout).toBe(0);
      expect(first.result?.summary).toMatchObject({ users: 4, summaries_sent: 1, already_sent: 0, not_due_yet: 3, summaries_failed: 0, unknown_time_zones: 0 });
      expect(first.result?.message).toBe(`sent 1 daily summary (or had sent them already); 3 users not due yet (before ${hh}:00 their time)`);
      expect(smtp.received.map((m) => m.to[0])).toEqual([users.find((u) => u.hour === latest)!.email]);

      // The next run within the hour: nothing new.
      const again = await runRunner(runArgs({ localHour: latest }), env());
      expect(again.code, again.stdout).toBe(0);
      expect(again.result?.summary).toMatchObject({ summaries_sent: 0, already_sent: 1, not_due_yet: 3 });
      expect(smtp.received).toHaveLength(1);

      // The others' hour has come (localHour at the earliest of theirs): each gets theirs, the first user not again.
      const later = await runRunner(runArgs({ localHour: Math.min(...users.map((u) => u.hour)) }), env());
      expect(later.code, later.stdout).toBe(0);
      expect(later.result?.summary).toMatchObject({ summaries_sent: 3, already_sent: 1, not_due_yet: 0 });
      expect(later.result?.message).toBe('sent 4 daily summaries (or had sent them already)');
      expect(smtp.received.map((m) => m.to[0]).sort()).toEqual(users.map((u) => u.email).sort());
      // Each for the user's own date, once.
      const { rows } = await db.query('SELECT user_id, summary_date::text AS d, status, attempts FROM daily_summary_deliveries ORDER BY user_id');
      expect(rows).toEqual(await Promise.all(users.map(async (u) => ({ user_id: u.id, d: await localDate(u.id), status: 'sent', attempts: 1 }))));
    });
  });

  it("sends once per local date when a user's zone changes between runs", async () => {
    await clearOfLocalMidnight(['Europe/Berlin', 'Europe/London', 'Asia/Dubai', 'Pacific/Kiritimati', 'Pacific/Pago_Pago'], 60_000);
    try {
      expect((await runRunner(runArgs(), env())).code).toBe(0);
      const berlinDate = await localDate(ada);
      // Ada moves an hour or two off Berlin, to a zone on the same date (London's, but in Berlin's
      // first hour, when London is on the day before; then Dubai's): no second summary that date.
      const sameDate = (await dateIn('Europe/London')) === berlinDate ? 'Europe/London' : 'Asia/Dubai';
      await db.query('UPDATE users SET timezone = $2 WHERE id = $1', [ada, sameDate]);
      expect(await localDate(ada)).toBe(berlinDate);
      const moved = await runRunner(runArgs(), env());
      expect(moved.code, moved.stdout).toBe(0);
      expect(moved.result?.summary).toMatchObject({ summaries_sent: 0, already_sent: 2 });
      expect(smtp.received).toHaveLength(2);

      // Then half a day off, to a zone on another date (Kiritimati, UTC+14, or Pago Pago, UTC−11:
      // one of them always is): that date's summary.
      const otherZone = (await dateIn('Pacific/Kiritimati')) !== berlinDate ? 'Pacific/Kiritimati' : 'Pacific/Pago_Pago';
      await db.query('UPDATE users SET timezone = $2 WHERE id = $1', [ada, otherZone]);
      const otherDate = await localDate(ada);
      expect(otherDate).not.toBe(berlinDate);
      const far = await runRunner(runArgs(), env());
      expect(far.code, far.stdout).toBe(0);
      expect(far.result?.summary).toMatchObject({ summaries_sent: 1, already_sent: 1 });
      expect(smtp.received.slice(2).map((m) => [m.to[0], m.messageId])).toEqual([['ada@example.org', `<daily-summary-${ada}-${otherDate}@bgtask.example>`]]);
      const { rows } = await db.query('SELECT summary_date::text AS d, status, attempts FROM daily_summary_deliveries WHERE user_id = $1 ORDER BY summary_date', [ada]);
      expect(rows).toEqual([berlinDate, otherDate].sort().map((d) => ({ d, status: 'sent', attempts: 1 })));
    } finally {
      await db.query("UPDATE users SET timezone = 'Europe/Berlin' WHERE id = $1", [ada]);
    }
  });

  it("sends to the others when a user's time zone is unknown, and names that user without failing the run (a retry could not help)", async () => {
    await withUsersIn(['Mars/Olympus_Mons'], async ([mars]) => {
      const exit = await runRunner(runArgs(), env());
      expect(exit.code, exit.stdout).toBe(0);
      expect(exit.result?.summary).toMatchObject({ users: 3, summaries_sent: 2, unknown_time_zones: 1, summaries_failed: 0 });
      expect(exit.result?.message).toBe(`sent 2 daily summaries (or had sent them already); not sent, unknown time zone: user ${mars} ("Mars/Olympus_Mons")`);
      expect(exit.lines.filter((l) => l.msg === 'daily summary not sent: unknown time zone')).toEqual([expect.objectContaining({ user: mars, zone: 'Mars/Olympus_Mons' })]);
      expect(smtp.received.map((m) => m.to[0]).sort()).toEqual(['ada@example.org', 'bob@example.org']);
      expect((await db.query('SELECT 1 FROM daily_summary_deliveries WHERE user_id = $1', [mars])).rows).toEqual([]);
    });
  });
});
