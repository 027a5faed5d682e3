// email.send-notifications as a process: the due e-mail notifications go to their users once, with
// a stable Message-ID; a refusal of the address for good fails the row, a refusal for now defers
// it to the next run, a dead run's stale claim is taken over, SMTP down leaves the rows pending, and
// the notification of a calendar event gone from its user's calendars is cancelled, not sent.
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type pg from 'pg';
import { startFakeSmtp, type FakeSmtp } from '../support/fake-smtp.ts';
import { freshDatabase, migrated, testPool } from '../support/runner-db.ts';
import { closedPort } from '../support/runner-net.ts';
import { buildRunner, runRunner, startRunner } from '../support/runner-process.ts';

const TASK = 'email.send-notifications';
let url: string;
let db: pg.Pool;
let smtp: FakeSmtp;
let ada: string;
let bob: string;

beforeAll(async () => {
  buildRunner();
  url = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_send_notifications'));
  db = testPool(url);
  smtp = await startFakeSmtp();
  const { rows } = await db.query<{ id: string }>("INSERT INTO users (email, display_name) VALUES ('ada@example.org', 'Ada'), ('bob@example.org', 'Bob') RETURNING id");
  [ada, bob] = [rows[0]!.id, rows[1]!.id];
});
afterAll(async () => {
  await smtp.close();
  await db.end();
});
beforeEach(async () => {
  await db.query('TRUNCATE notifications, calendar_event_uids, calendar_feeds');
  smtp.received.length = 0;
  smtp.behaviour = {};
});

const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: url, SMTP_URL: smtp.url, EMAIL_FROM: 'Assistant <assistant@bgtask.example>', ...extra });

/** Inserts a notification; `sql` columns are SQL expressions (scheduled_for, status, claimed_at …). */
async function notify(user: string, title: string, sql: Record<string, string> = {}): Promise<string> {
  const cols = { channel: "'email'", scheduled_for: "now() - interval '1 minute'", ...sql };
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO notifications (user_id, title, body, ${Object.keys(cols).join(', ')}) VALUES ($1, $2, $3, ${Object.values(cols).join(', ')}) RETURNING id`,
    [user, title, `Body of ${title}.`],
  );
  return rows[0]!.id;
}

const row = async (id: string) =>
  (await db.query<{ status: string; attempts: number; last_error: string | null; sent: boolean }>(
    'SELECT status, attempts, last_error, sent_at IS NOT NULL AS sent FROM notifications WHERE id = $1',
    [id],
  )).rows[0]!;

describe(TASK, () => {
  it('sends each due e-mail notification once, to its user, with a stable Message-ID; leaves future ones and other channels alone', async () => {
    const a = await notify(ada, 'Digest ready');
    const b = await notify(bob, 'Task failed: backup');
    const later = await notify(ada, 'Tomorrow', { scheduled_for: "now() + interval '1 day'" });
    const sms = await notify(ada, 'By SMS', { channel: "'sms'" });
    const push = await notify(bob, 'By push', { channel: "'push'" });
    const inApp = await notify(bob, 'In the app', { channel: "'in_app'" });

    const exit = await runRunner(['run', TASK], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ notifications_sent: 2, notifications_refused: 0, notifications_failed: 0, notifications_deferred: 0, due_remaining: 0 });
    expect(exit.result?.message).toBe('sent 2 notifications; 0 due left');
    // Sent at once over the pooled connections: in either order.
    expect(smtp.received.map((m) => [m.to, m.messageId, m.subject]).sort((x, y) => String(x[0]).localeCompare(String(y[0])))).toEqual([
      [['ada@example.org'], `<notification-${a}@bgtask.example>`, 'Digest ready'],
      [['bob@example.org'], `<notification-${b}@bgtask.example>`, 'Task failed: backup'],
    ]);
    expect(smtp.received.find((m) => m.to[0] === 'ada@example.org')!.raw).toContain('Body of Digest ready.');
    expect(await row(a)).toEqual({ status: 'sent', attempts: 1, last_error: null, sent: true });
    for (const id of [later, sms, push, inApp]) expect(await row(id)).toEqual({ status: 'pending', attempts: 0, last_error: null, sent: false });

    const again = await runRunner(['run', TASK], env());
    expect(again.code, again.stdout).toBe(0);
    expect(again.result?.summary).toMatchObject({ notifications_sent: 0 });
    expect(smtp.received).toHaveLength(2);
  });

  it('fails a notification whose address the server refuses for good (550), and does not try it again', async () => {
    const refusals: string[] = [];
    smtp.behaviour = { refuseRecipient: (addr) => (addr === 'bob@example.org' ? (refusals.push(addr), { code: 550, message: 'no such user here' }) : undefined) };
    const a = await notify(ada, 'For Ada');
    const b = await notify(bob, 'For Bob');
    const exit = await runRunner(['run', TASK], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ notifications_sent: 1, notifications_refused: 1, notifications_failed: 0, notifications_deferred: 0 });
    expect(exit.result?.message).toBe('sent 1 notification (1 refused for good by the mail server); 0 due left');
    expect(await row(a)).toMatchObject({ status: 'sent' });
    expect(await row(b)).toEqual({ status: 'failed', attempts: 1, last_error: expect.stringContaining('550 no such user here'), sent: false });

    const again = await runRunner(['run', TASK], env());
    expect(again.code, again.stdout).toBe(0);
    expect(again.result?.summary).toMatchObject({ notifications_sent: 0, notifications_refused: 0 });
    expect(refusals).toEqual(['bob@example.org']);
  });

  it('puts a notification refused for now (452) back to pending, tries it on the next run, and fails it after maxAttempts', async () => {
    smtp.behaviour = { refuseRecipient: (addr) => (addr === 'bob@example.org' ? { code: 452, message: 'mailbox full, try later' } : undefined) };
    const b = await notify(bob, 'For Bob');
    const first = await runRunner(['run', TASK], env());
    expect(first.code, first.stdout).toBe(0);
    expect(first.result?.summary).toMatchObject({ notifications_sent: 0, notifications_deferred: 1, due_remaining: 1 });
    expect(first.result?.message).toBe('sent 0 notifications (1 deferred to the next run); 1 due left');
    expect(await row(b)).toEqual({ status: 'pending', attempts: 1, last_error: expect.stringContaining('452 mailbox full, try later'), sent: false });
    // Given back without its lease: a runner from before migration 0014 claiming it again must not inherit it.
    expect((await db.query('SELECT lease_expires_at FROM notifications WHERE id = $1', [b])).rows[0]).toEqual({ lease_expires_at: null });

    smtp.behaviour = {};
    const next = await runRunner(['run', TASK], env());
    expect(next.code, next.stdout).toBe(0);
    expect(next.result?.summary).toMatchObject({ notifications_sent: 1 });
    expect(await row(b)).toMatchObject({ status: 'sent', attempts: 2, sent: true });
    expect(smtp.received.map((m) => m.messageId)).toEqual([`<notification-${b}@bgtask.example>`]);

    // Refused for now on its last attempt: failed.
    smtp.behaviour = { refuseRecipient: () => ({ code: 452, message: 'mailbox full, try later' }) };
    const last = await notify(ada, 'For Ada', { attempts: '1' });
    const exit = await runRunner(['run', TASK, '--params', '{"maxAttempts":2}'], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ notifications_failed: 1, notifications_deferred: 0 });
    expect(await row(last)).toMatchObject({ status: 'failed', attempts: 2 });
  });

  it('retries, not fails for good, a relay refusal naming the recipient (5.7.1: a configuration to fix)', async () => {
    smtp.behaviour = { refuseRecipient: () => ({ code: 554, message: '5.7.1 Relay access denied' }) };
    const b = await notify(bob, 'For Bob');
    const exit = await runRunner(['run', TASK], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ notifications_refused: 0, notifications_deferred: 1 });
    expect(await row(b)).toEqual({ status: 'pending', attempts: 1, last_error: expect.stringContaining('Relay access denied'), sent: false });
  });

  it('claims a notification refused for now once per run, with more due than a batch holds', async () => {
    smtp.behaviour = { refuseRecipient: (addr) => (addr === 'bob@example.org' ? { code: 452, message: 'mailbox full, try later' } : undefined) };
    const b = await notify(bob, 'For Bob', { scheduled_for: "now() - interval '3 minutes'" });
    for (const t of ['A1', 'A2']) await notify(ada, t);
    const exit = await runRunner(['run', TASK, '--params', '{"batchSize":1,"maxConnections":1}'], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ notifications_sent: 2, notifications_deferred: 1 });
    expect(await row(b)).toMatchObject({ status: 'pending', attempts: 1 });
  });

  it("takes over a dead run's claim older than the task's timeout, and leaves a fresh one alone", async () => {
    const stale = await notify(ada, 'Stale claim', { status: "'sending'", attempts: '1', claimed_at: "now() - interval '10 minutes'" });
    const fresh = await notify(bob, 'Fresh claim', { status: "'sending'", attempts: '1', claimed_at: "now() - interval '1 minute'" });
    const exit = await runRunner(['run', TASK], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ notifications_sent: 1, claims_taken_over: 1 });
    expect(smtp.received.map((m) => m.messageId)).toEqual([`<notification-${stale}@bgtask.example>`]);
    expect(await row(stale)).toMatchObject({ status: 'sent', attempts: 2 });
    expect(await row(fresh)).toMatchObject({ status: 'sending', attempts: 1, sent: false });
  });

  it("keeps each claim for its own run's lifetime: a longer-running BackgroundTask's claim is not taken over at the default timeout", async () => {
    // Claimed 10 minutes ago by a run whose Job may last an hour: still alive, perhaps sending.
    const long = await notify(ada, 'Long run', { status: "'sending'", attempts: '1', claimed_at: "now() - interval '10 minutes'", lease_expires_at: "now() + interval '50 minutes'" });
    // Claimed 2 minutes ago by a run with a 60 s deadline: dead by now.
    const short = await notify(bob, 'Short run', { status: "'sending'", attempts: '1', claimed_at: "now() - interval '2 minutes'", lease_expires_at: "now() - interval '30 seconds'" });
    const fresh = await notify(bob, 'New');
    const exit = await runRunner(['run', TASK], env({ BGTASK_TIMEOUT_SECONDS: '600' }));
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ notifications_sent: 2, claims_taken_over: 1 });
    expect(smtp.received.map((m) => m.messageId).sort()).toEqual([`<notification-${fresh}@bgtask.example>`, `<notification-${short}@bgtask.example>`].sort());
    expect(await row(long)).toMatchObject({ status: 'sending', attempts: 1, sent: false });
    // This run's own claims last its deadline plus the pod's 30 s to stop.
    const { rows } = await db.query<{ seconds: number }>('SELECT extract(epoch FROM lease_expires_at - claimed_at)::int AS seconds FROM notifications WHERE id = ANY($1)', [[short, fresh]]);
    expect(rows.map((r) => r.seconds)).toEqual([630, 630]);
  });

  it('sends the oldest first, a batch at a time, up to maxConnections at once', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await notify(i % 2 ? ada : bob, `n${i}`, { scheduled_for: `now() - interval '${10 - i} minutes'` }));
    const exit = await runRunner(['run', TASK, '--params', '{"batchSize":3,"maxConnections":1}'], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ notifications_sent: 7 });
    expect(smtp.received.map((m) => m.subject)).toEqual(['n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6']);
  });

  it('on SIGTERM, takes no further notification, settles those on their way, puts the unsent claims back; the next run sends the rest', async () => {
    for (let i = 0; i < 20; i++) await notify(i % 2 ? ada : bob, `n${i}`);
    smtp.behaviour = { dataDelayMs: 200 };
    const runner = startRunner(['run', TASK, '--params', '{"maxConnections":2,"batchSize":10}'], env());
    const deadline = Date.now() + 30_000;
    while (smtp.received.length < 2) {
      if (Date.now() > deadline || runner.child.exitCode !== null) throw new Error(`nothing sent:\n${runner.lines.map((l) => JSON.stringify(l)).join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    runner.child.kill('SIGTERM');
    const exit = await runner.exit;
    expect(exit.code, exit.stdout).toBe(143);
    const sentFirst = smtp.received.length;
    expect(sentFirst).toBeLessThan(20);
    expect(exit.result?.summary).toMatchObject({ notifications_sent: sentFirst });
    const { rows } = await db.query<{ status: string; attempts: number; n: number }>('SELECT status, attempts, count(*)::int AS n FROM notifications GROUP BY 1, 2 ORDER BY 1');
    expect(rows).toEqual([
      { status: 'pending', attempts: 0, n: 20 - sentFirst },
      { status: 'sent', attempts: 1, n: sentFirst },
    ]);

    smtp.behaviour = {};
    const rest = await runRunner(['run', TASK], env());
    expect(rest.code, rest.stdout).toBe(0);
    expect(rest.result?.summary).toMatchObject({ notifications_sent: 20 - sentFirst });
    expect(new Set(smtp.received.map((m) => m.messageId)).size).toBe(20);
  });

  it('exits 1 when SMTP is down, leaving the notifications pending with no attempt counted; the retry sends them', async () => {
    const a = await notify(ada, 'For Ada');
    const b = await notify(bob, 'For Bob');
    const port = await closedPort();
    const down = await runRunner(['run', TASK], env({ SMTP_URL: `smtp://127.0.0.1:${port}` }));
    expect(down.code, down.stdout).toBe(1);
    expect(down.result?.message).toContain('the SMTP server is unavailable');
    expect(down.result?.message).toContain('ECONNREFUSED');
    expect(down.result?.summary).toMatchObject({ notifications_sent: 0, claims_released: 2 });
    for (const id of [a, b]) expect(await row(id)).toEqual({ status: 'pending', attempts: 0, last_error: null, sent: false });

    const retry = await runRunner(['run', TASK], { ...env(), BGTASK_TRIGGER: 'Retry', BGTASK_ATTEMPT: '2' });
    expect(retry.code, retry.stdout).toBe(0);
    expect(smtp.received).toHaveLength(2);
  });

  it("cancels, not sends, the notification of a calendar event in none of its user's calendars (its UID gone, or its calendar's feed removed); sends one whose event stays", async () => {
    await db.query("INSERT INTO calendar_feeds (user_id, calendar_id, url) VALUES ($1, 'default', 'https://cal.example/a.ics'), ($1, 'work', 'https://cal.example/w.ics')", [ada]);
    await db.query("INSERT INTO calendar_event_uids (user_id, calendar_id, uid) VALUES ($1, 'default', 'kept'), ($1, 'work', 'work-only')", [ada]);
    // Its event has no row (no occurrence in the sync's window, say) but is still in a calendar.
    const kept = await notify(ada, 'New calendar event: Kept', { calendar_event_uid: "'kept'" });
    const deleted = await notify(ada, 'New calendar event: Deleted', { calendar_event_uid: "'deleted'" });
    const workOnly = await notify(ada, 'New calendar event: Work only', { calendar_event_uid: "'work-only'" });
    // A dead run's claim, its event gone meanwhile: not sent again.
    const stale = await notify(ada, 'New calendar event: Stale', { calendar_event_uid: "'deleted-too'", status: "'sending'", attempts: '1', claimed_at: "now() - interval '10 minutes'", lease_expires_at: "now() - interval '1 minute'" });
    const digest = await notify(bob, 'Digest ready');
    await db.query("DELETE FROM calendar_feeds WHERE user_id = $1 AND calendar_id = 'work'", [ada]);

    const dry = await runRunner(['run', TASK, '--dry-run'], env());
    expect(dry.code, dry.stdout).toBe(0);
    expect(dry.result?.message).toBe("dry run: 2 notifications would be sent (3 would be cancelled because their events left the user's calendars)");
    const exit = await runRunner(['run', TASK, '--params', '{"batchSize":2}'], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ notifications_sent: 2, notifications_cancelled: 3, due_remaining: 0 });
    expect(exit.result?.message).toBe("sent 2 notifications (3 cancelled because their events left the user's calendars); 0 due left");
    expect(smtp.received.map((m) => m.subject).sort()).toEqual(['Digest ready', 'New calendar event: Kept']);
    for (const id of [kept, digest]) expect(await row(id)).toMatchObject({ status: 'sent' });
    for (const id of [deleted, workOnly, stale]) expect(await row(id)).toMatchObject({ status: 'cancelled', sent: false });
    expect((await db.query('SELECT lease_expires_at FROM notifications WHERE id = $1', [stale])).rows).toEqual([{ lease_expires_at: null }]);
  });

  it('refuses to run without a sender', async () => {
    const exit = await runRunner(['run', TASK], env({ EMAIL_FROM: '' }));
    expect(exit.code, exit.stdout).toBe(2);
    expect(exit.result?.message).toContain('email.send-notifications needs a sender: the from param or EMAIL_FROM');
  });
});
