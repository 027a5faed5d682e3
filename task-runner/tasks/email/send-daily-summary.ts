import type { DateTime } from 'luxon';
import * as z from 'zod';
import { InvalidInputError, describeError } from '../../errors.ts';
import { defineTask } from '../../task.ts';
import { countNoun } from '../../count-noun.ts';
import { leaseEnd, leaseEndsSql } from './claim-lease.ts';

interface Recipient {
  id: string;
  email: string;
  display_name: string | null;
  timezone: string;
}

/** A user whose summary is due, with the start of their local day (its date the claim's key). */
interface Due {
  user: Recipient;
  day: DateTime;
}

const TIMEOUT_SECONDS = 900;

/** A line of the run's message about one user, with the user's place among them. */
interface Listed {
  at: number;
  text: string;
}
const inOrder = (list: Listed[]) => list.sort((a, b) => a.at - b.at).map((l) => l.text);

// The (user, day) claim: new, or a failed attempt, or a 'sending' claim whose lease has ended (the
// run that took it is dead), while fewer than maxAttempts ($7) were made. Not one the server
// refused for good ('refused'): sent again, it would be refused again. A claim without a lease
// (taken by a runner from before migration 0014) has the task's default timeout ($5), as it had
// then; $6 is this claim's lease.
const CLAIM = `
  INSERT INTO daily_summary_deliveries AS d (user_id, summary_date, status, message_id, claimed_at, lease_expires_at)
  VALUES ($1, $2, 'sending', $3, $4, $6)
  ON CONFLICT (user_id, summary_date) DO UPDATE SET status = 'sending', claimed_at = $4, lease_expires_at = $6, attempts = d.attempts + 1, last_error = NULL
    WHERE d.attempts < $7 AND (d.status = 'failed' OR (d.status = 'sending' AND ${leaseEndsSql('$5', 'd')} < $4::timestamptz))
  RETURNING user_id`;

export default defineTask({
  name: 'email.send-daily-summary',
  family: 'email',
  description:
    "E-mails each opted-in user yesterday's runs and AI results and today's events, once per user and local day, from localHour on in the user's own time zone",
  params: z.strictObject({
    localHour: z.int().min(0).max(23).default(8).describe("the hour of the user's own day from which their summary is due; a run before it skips them"),
    from: z.string().min(3).optional().describe('sender (else EMAIL_FROM)'),
    maxConnections: z.int().min(1).max(20).default(2).describe('pooled SMTP connections; as many users are handled at once'),
    smtpTimeoutSeconds: z.int().min(1).max(300).default(30).describe('connect, greeting and socket timeout'),
    // Hourly runs would otherwise try a failing user's summary every hour of their day.
    maxAttempts: z.int().min(1).max(100).default(4).describe("sends tried per user and day (the task's runs and retries together); then given up for that day"),
  }),
  defaults: {
    // Hourly, so each user's summary goes out within the hour after localHour in their own zone.
    schedule: '0 * * * *',
    retry: { maxRetries: 3, delaySeconds: 600, backoff: 'Fixed' },
    timeoutSeconds: TIMEOUT_SECONDS,
    softTimeoutSeconds: 840,
  },
  needs: { postgres: true },
  async run(ctx) {
    const p = ctx.params;
    const env = ctx.requireSettings(['SMTP_URL']);
    const [{ openMailer, classifyFailure, addressRefused, senderDomain }, { summaryText }, { localSummaryDay }] = await Promise.all([
      import('../../services/smtp.ts'),
      import('./summary-text.ts'),
      import('./summary-due.ts'),
    ]);
    const from = p.from ?? env.EMAIL_FROM;
    if (!from) throw new InvalidInputError('invalid configuration: email.send-daily-summary needs a sender: the from param or EMAIL_FROM');
    const domain = senderDomain(from);
    const { rows: users } = await ctx.db.query<Recipient>('SELECT id, email, display_name, timezone FROM users WHERE daily_summary_opt_in ORDER BY id');
    for (const key of ['summaries_sent', 'already_sent', 'summaries_refused', 'refused_earlier', 'summaries_failed', 'summaries_given_up', 'claimed_elsewhere', 'not_due_yet', 'unknown_time_zones']) {
      ctx.count(key, 0);
    }
    ctx.set('users', users.length);

    // Each user's local day as the run starts: one whose hour comes while it runs waits for the next run.
    const checkedAt = ctx.clock.now();
    const due: Due[] = [];
    let notDue = 0;
    // A zone nobody knows has no local day to send for: a retry could not change that, so it does
    // not fail the run (which, hourly, would fail every run and hide the failures a retry fixes);
    // the log, the summary and the message name the user.
    const unknownZones: string[] = [];
    for (const user of users) {
      const local = localSummaryDay(checkedAt, user.timezone, p.localHour);
      if (!local) {
        unknownZones.push(`user ${user.id} (${JSON.stringify(user.timezone)})`);
        ctx.count('unknown_time_zones');
        ctx.log.warn({ user: user.id, zone: user.timezone }, 'daily summary not sent: unknown time zone');
      } else if (local.due) {
        due.push({ user, day: local.day });
      } else {
        notDue++;
        ctx.count('not_due_yet');
      }
    }
    // In every message, dry run or not: a schedule that runs before most users' localHour (a daily
    // one kept from before the task went hourly) shows whom it leaves out.
    const skipped = [
      ...(unknownZones.length > 0 ? [`not sent, unknown time zone: ${unknownZones.join('; ')}`] : []),
      ...(notDue > 0 ? [`${countNoun(notDue, 'user')} not due yet (before ${String(p.localHour).padStart(2, '0')}:00 their time)`] : []),
    ];
    if (ctx.dryRun) return [`dry run: up to ${countNoun(due.length, 'summary', 'summaries')} would be sent`, ...skipped].join('; ');

    const mailer = await openMailer(env.SMTP_URL, { pool: true, maxConnections: p.maxConnections, timeoutMs: p.smtpTimeoutSeconds * 1000 });
    // Users are handled maxConnections at a time, so every pooled connection has a message to
    // send; they finish out of order, so what the message lists is kept with the user's place.
    const failures: Listed[] = [];
    // Refused for good by the server: recorded, not retried, and no reason to fail the run (a
    // retry could not change the answer); the summary and the message name them.
    const refused: Listed[] = [];
    let refusedEarlier = 0;
    // Failed maxAttempts times today: left for the day, and no reason to fail the run again (each
    // attempt's failure already did); the summary and the message name them.
    const givenUp: Listed[] = [];
    // Users whose summary another run claimed and whose lease has not ended: sending it now, or
    // dead (killed mid-send). Not done until it says so: this run fails, and a retry after the
    // claim's lease (the latest, in the message) takes it over.
    const elsewhere: Listed[] = [];
    let latestLease: Date | undefined;
    let unavailable: unknown;

    const handle = async ({ user, day: today, at }: Due & { at: number }) => {
      const date = today.toISODate()!;
      const messageId = `<daily-summary-${user.id}-${date}@${domain}>`;
      const now = ctx.clock.now();
      const claimed = await ctx.db.query(CLAIM, [user.id, date, messageId, now, TIMEOUT_SECONDS, leaseEnd(ctx, now), p.maxAttempts]);
      if (claimed.rowCount === 0) {
        const { rows } = await ctx.db.query<{ status: string; lease_ends: Date; attempts: number; last_error: string | null }>(
          `SELECT status, ${leaseEndsSql('$3')} AS lease_ends, attempts, last_error FROM daily_summary_deliveries WHERE user_id = $1 AND summary_date = $2`,
          [user.id, date, TIMEOUT_SECONDS],
        );
        const row = rows[0];
        if (row?.status === 'sent') {
          ctx.count('already_sent');
        } else if (row?.status === 'refused') {
          ctx.count('refused_earlier');
          refusedEarlier++;
        } else if (row && row.attempts >= p.maxAttempts && (row.status === 'failed' || row.lease_ends < now)) {
          ctx.count('summaries_given_up');
          givenUp.push({ at, text: `user ${user.id} (${countNoun(row.attempts, 'attempt')}${row.last_error ? `, last: ${row.last_error}` : ''})` });
        } else {
          ctx.count('claimed_elsewhere');
          elsewhere.push({ at, text: user.id });
          const ends = rows[0]?.lease_ends;
          if (ends && (!latestLease || ends > latestLease)) latestLease = ends;
        }
        return;
      }
      const [start, end, yesterday] = [today.toJSDate(), today.plus({ days: 1 }).toJSDate(), today.minus({ days: 1 }).toJSDate()];
      const [runs, results, events] = await Promise.all([
        ctx.db.query<{ task: string; outcome: string; n: number }>(
          'SELECT task, outcome, count(*)::int AS n FROM task_runs WHERE started_at >= $1 AND started_at < $2 GROUP BY 1, 2 ORDER BY 1, 2',
          [yesterday, start],
        ),
        ctx.db.query<{ title: string; status: string; result: string | null; error: string | null }>(
          `SELECT t.title, r.status, r.result, r.error FROM ai_task_results r JOIN ai_tasks t ON t.id = r.ai_task_id
           WHERE r.user_id = $1 AND r.created_at >= $2 AND r.created_at < $3 ORDER BY r.created_at`,
          [user.id, yesterday, start],
        ),
        // Today's events: starting today, or begun earlier and still going (an end is exclusive).
        ctx.db.query<{ summary: string; starts_at: Date; ends_at: Date | null; all_day: boolean; location: string | null }>(
          `SELECT summary, starts_at, ends_at, all_day, location FROM calendar_events
           WHERE user_id = $1 AND status <> 'cancelled' AND starts_at < $3 AND (starts_at >= $2 OR ends_at > $2) ORDER BY starts_at, id`,
          [user.id, start, end],
        ),
      ]);
      const { subject, text } = summaryText({
        name: user.display_name ?? user.email,
        zone: user.timezone,
        date,
        runs: runs.rows,
        results: results.rows,
        events: events.rows,
      });
      try {
        await mailer.send({ messageId, from, to: user.email, subject, text });
      } catch (err) {
        const message = describeError(err);
        const kind = classifyFailure(err);
        // Refused for good only when the server refused this user's address: a refused sender, a
        // relay or policy refusal (a configuration to fix) is a failure, retried once fixed.
        const refusedUser = kind === 'permanent' && addressRefused(err, user.email);
        const status = refusedUser ? 'refused' : 'failed';
        // Without its lease: a runner from before migration 0014 claiming it again must not inherit it.
        await ctx.db.query('UPDATE daily_summary_deliveries SET status = $3, last_error = $4, lease_expires_at = NULL WHERE user_id = $1 AND summary_date = $2', [user.id, date, status, message]);
        ctx.log.warn({ user: user.id, kind, err }, 'daily summary not sent');
        if (refusedUser) {
          refused.push({ at, text: `user ${user.id}: ${message}` });
          ctx.count('summaries_refused');
          return;
        }
        if (kind === 'unavailable') unavailable ??= err;
        failures.push({ at, text: `user ${user.id}: ${message}` });
        ctx.count('summaries_failed');
        return;
      }
      await ctx.db.query("UPDATE daily_summary_deliveries SET status = 'sent', sent_at = $3 WHERE user_id = $1 AND summary_date = $2", [user.id, date, ctx.clock.now()]);
      ctx.count('summaries_sent');
    };

    let taken = 0;
    try {
      const { drainBounded } = await import('../../services/bounded.ts');
      // A stop, or the server found unavailable, ends the taking of users; those in flight finish
      // (their claims settled, not left 'sending' for a retry to wait out).
      const next = () => (taken < due.length ? { ...due[taken]!, at: taken++ } : undefined);
      await drainBounded(next, p.maxConnections, handle, () => ctx.signal.aborted || unavailable !== undefined);
    } finally {
      mailer.close();
    }
    // Stopped with users left: Interrupted or TimedOut. A stop after the last user changes nothing.
    if (taken < due.length) ctx.signal.throwIfAborted();
    if (unavailable !== undefined) throw new Error('the SMTP server is unavailable; the remaining summaries go out on the retry', { cause: unavailable });
    if (failures.length > 0) throw new Error(`${failures.length} of ${due.length} daily summaries failed: ${inOrder(failures).join('; ')}`);
    if (elsewhere.length > 0) {
      throw new Error(`the daily summaries of users ${inOrder(elsewhere).join(', ')} are claimed by another run, which may have died; a retry takes them over once their claims' leases end${latestLease ? ` (at ${latestLease.toISOString()} at the latest)` : ''}`);
    }
    const sentAll = `sent ${countNoun(due.length - refused.length - refusedEarlier - givenUp.length, 'daily summary', 'daily summaries')} (or had sent them already)`;
    const refusedNow = refused.length > 0 ? [`refused for good by the mail server, not retried: ${inOrder(refused).join('; ')}`] : [];
    const givenUpNow = givenUp.length > 0 ? [`given up for today after ${countNoun(p.maxAttempts, 'attempt')}: ${inOrder(givenUp).join('; ')}`] : [];
    return [sentAll, ...refusedNow, ...givenUpNow, ...skipped].join('; ');
  },
});
