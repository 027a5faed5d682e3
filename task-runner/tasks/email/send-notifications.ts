import * as z from 'zod';
import { InvalidInputError, describeError } from '../../errors.ts';
import { defineTask } from '../../task.ts';
import { countNoun } from '../../count-noun.ts';
import { leaseEnd, leaseEndsSql } from './claim-lease.ts';
import { announcesGoneEventSql } from '../sync/calendar-membership.ts';

interface Claimed {
  id: string;
  title: string;
  body: string;
  attempts: number;
  email: string;
  /** The row's status before this claim: 'sending' is a dead run's claim taken over. */
  was: string;
}

const TIMEOUT_SECONDS = 280;

// Due e-mail notifications ($1 now, $2 the default timeout): pending ones, and 'sending' ones whose
// claim's lease has ended (the run that took it is dead: a live run never outlasts its lease) or
// that have no claim time (set 'sending' before claims had one). A claim without a lease (taken by
// a runner from before migration 0014) has the task's default timeout, as it had then.
const DUE_WHERE = `channel = 'email' AND scheduled_for <= $1
  AND (status = 'pending' OR (status = 'sending' AND (claimed_at IS NULL
    OR ${leaseEndsSql('$2')} < $1::timestamptz)))`;

// A due notification of a calendar event that is in none of its user's calendars any more (gone
// since it was queued, however its rows went: sync.calendar-events cancels those it sees go, this
// catches the rest, e.g. a feed removed between syncs) is cancelled instead of sent.
const GONE = announcesGoneEventSql('notifications');

// Oldest first, a batch at a time. SKIP LOCKED: runs at once take different rows. Rows this run
// deferred ($4) wait for the next run rather than being tried again seconds later; $5 is the lease.
// Returns the claimed rows, oldest first, then the ids of the cancelled ones (`cancelled` true).
const CLAIM = `
  WITH due AS (
    SELECT id, status, ${GONE} AS gone FROM notifications
    WHERE ${DUE_WHERE}
      AND NOT (id = ANY($4::bigint[]))
    ORDER BY scheduled_for, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
  ), cancelled AS (
    UPDATE notifications n SET status = 'cancelled', lease_expires_at = NULL
    FROM due WHERE n.id = due.id AND due.gone
    RETURNING n.id
  ), claimed AS (
    UPDATE notifications n SET status = 'sending', claimed_at = $1, lease_expires_at = $5, attempts = n.attempts + 1
    FROM due, users u
    WHERE n.id = due.id AND NOT due.gone AND u.id = n.user_id
    RETURNING n.id, n.title, n.body, n.attempts, n.scheduled_for, u.email, due.status AS was
  )
  SELECT false AS cancelled, id, title, body, attempts, email, was, scheduled_for FROM claimed
  UNION ALL
  SELECT true, id, NULL, NULL, NULL, NULL, NULL, NULL FROM cancelled
  ORDER BY cancelled, scheduled_for, id`;

// Every settlement is of this run's own claim (status and claimed_at as it set them). A claim
// given back drops its lease: a runner from before migration 0014 claiming the row again would
// otherwise inherit it, and have its live claim taken over once that old lease ended.
const OWN = `id = $1 AND status = 'sending' AND claimed_at = $2`;

const DUE = `SELECT count(*) FILTER (WHERE NOT ${GONE})::int AS n, count(*) FILTER (WHERE ${GONE})::int AS gone FROM notifications WHERE ${DUE_WHERE}`;

const GONE_REASON = "because their events left the user's calendars";

export default defineTask({
  name: 'email.send-notifications',
  family: 'email',
  description: "Delivers the due e-mail notifications to their users' addresses: claimed with a lease, retried on transient failures, a resend keeping its Message-ID; one announcing a calendar event no longer in its user's calendars is cancelled instead",
  params: z.strictObject({
    from: z.string().min(3).optional().describe('sender (else EMAIL_FROM)'),
    batchSize: z.int().min(1).max(1000).default(50).describe('notifications claimed at a time'),
    maxNotifications: z.int().min(1).max(1_000_000).default(10_000).describe('notifications per run at most'),
    maxAttempts: z.int().min(1).max(100).default(5).describe('attempts before a notification the server keeps refusing for now is failed'),
    maxConnections: z.int().min(1).max(20).default(4).describe('pooled SMTP connections; as many notifications are sent at once'),
    smtpTimeoutSeconds: z.int().min(1).max(120).default(30).describe('connect, greeting and socket timeout'),
  }),
  defaults: {
    schedule: '*/5 * * * *',
    retry: { maxRetries: 3, delaySeconds: 300, backoff: 'Fixed' },
    timeoutSeconds: TIMEOUT_SECONDS,
    softTimeoutSeconds: 240,
  },
  needs: { postgres: true },
  async run(ctx) {
    const p = ctx.params;
    const env = ctx.requireSettings(['SMTP_URL']);
    const from = p.from ?? env.EMAIL_FROM;
    if (!from) throw new InvalidInputError('invalid configuration: email.send-notifications needs a sender: the from param or EMAIL_FROM');
    const { openMailer, classifyFailure, addressRefused, senderDomain, neverConnected } = await import('../../services/smtp.ts');
    const domain = senderDomain(from);
    /** Due notifications: to send, and to cancel (GONE). */
    const due = async () => (await ctx.db.query<{ n: number; gone: number }>(DUE, [ctx.clock.now(), TIMEOUT_SECONDS])).rows[0]!;
    if (ctx.dryRun) {
      const { n, gone } = await due();
      ctx.set('due', n);
      const cancelled = gone > 0 ? ` (${gone} would be cancelled ${GONE_REASON})` : '';
      return `dry run: ${countNoun(Math.min(n, p.maxNotifications), 'notification')} would be sent${cancelled}`;
    }

    for (const key of ['notifications_sent', 'notifications_refused', 'notifications_failed', 'notifications_deferred', 'notifications_cancelled', 'claims_taken_over', 'claims_released', 'claims_lost']) ctx.count(key, 0);
    const mailer = await openMailer(env.SMTP_URL, { pool: true, maxConnections: p.maxConnections, timeoutMs: p.smtpTimeoutSeconds * 1000 });

    const buffer: Claimed[] = [];
    // Put back to 'pending' by this run: not claimed again before the next run.
    const deferred: string[] = [];
    const tally = { sent: 0, refused: 0, failed: 0, deferred: 0, cancelled: 0 };
    // Each row's claim time, to settle only this run's own claims.
    const claims = new Map<string, Date>();
    let claimedTotal = 0;
    let drained = false;
    let unavailable: unknown;
    let claiming: Promise<void> | undefined;
    const stopped = () => ctx.signal.aborted || unavailable !== undefined;

    // Claimed in batches, so a stop or an unavailable server leaves at most a batch to put back.
    const next = async (): Promise<Claimed | undefined> => {
      while (buffer.length === 0) {
        if (stopped() || drained || claimedTotal >= p.maxNotifications) return undefined;
        claiming ??= (async () => {
          const limit = Math.min(p.batchSize, p.maxNotifications - claimedTotal);
          const claimedAt = ctx.clock.now();
          const { rows: taken } = await ctx.db.query<Claimed & { cancelled: boolean }>(CLAIM, [claimedAt, TIMEOUT_SECONDS, limit, deferred, leaseEnd(ctx, claimedAt)]);
          const rows = taken.filter((r) => !r.cancelled);
          const cancelled = taken.filter((r) => r.cancelled).map((r) => r.id);
          if (cancelled.length > 0) {
            tally.cancelled += cancelled.length;
            ctx.count('notifications_cancelled', cancelled.length);
            ctx.log.info({ notifications: cancelled }, `notifications cancelled, not sent, ${GONE_REASON}`);
          }
          for (const row of rows) claims.set(row.id, claimedAt);
          claimedTotal += taken.length;
          buffer.push(...rows);
          if (taken.length < limit) drained = true;
          const takenOver = rows.filter((r) => r.was === 'sending').map((r) => r.id);
          if (takenOver.length > 0) {
            ctx.count('claims_taken_over', takenOver.length);
            ctx.log.warn({ notifications: takenOver }, 'claims of a dead run taken over: sent again with the same Message-ID');
          }
        })().finally(() => (claiming = undefined));
        await claiming;
      }
      // Claimed but not started when the run stops: put back below.
      if (stopped()) return undefined;
      return buffer.shift();
    };

    // Claims this run never offered to the server (taken, then a stop or the server unavailable):
    // back to 'pending', the attempt not counted.
    const toRelease: Claimed[] = [];

    const handle = async (n: Claimed) => {
      const own = [n.id, claims.get(n.id)];
      try {
        await mailer.send({ messageId: `<notification-${n.id}@${domain}>`, from, to: n.email, subject: n.title, text: n.body });
      } catch (err) {
        const message = describeError(err);
        const kind = classifyFailure(err);
        // The server gone: no more rows are taken, and the run fails for a retry. Unless no
        // connection was ever made, the notification may have been offered (a timeout waiting
        // for the answer to DATA can even follow a delivery): settled as an attempt like any other
        // failure, so maxAttempts still bounds it.
        if (kind === 'unavailable') {
          unavailable ??= err;
          if (neverConnected(err)) {
            toRelease.push(n);
            return;
          }
        }
        // Failed for good only when the server refused this user's address; a refused sender, a
        // relay or policy refusal, or a message it will not take is a configuration to fix:
        // retried, up to maxAttempts.
        const refusedUser = kind === 'permanent' && addressRefused(err, n.email);
        const { rows } = await ctx.db.query<{ status: string }>(
          `UPDATE notifications SET status = CASE WHEN $3 OR attempts >= $4 THEN 'failed' ELSE 'pending' END, last_error = $5, lease_expires_at = NULL
           WHERE ${OWN} RETURNING status`,
          [...own, refusedUser, p.maxAttempts, message],
        );
        const status = rows[0]?.status;
        if (status === undefined) {
          ctx.count('claims_lost');
          ctx.log.warn({ notification: n.id, err }, 'notification not sent, and its claim was taken over meanwhile');
          return;
        }
        const outcome = refusedUser ? 'refused' : status === 'failed' ? 'failed' : 'deferred';
        if (status === 'pending') deferred.push(n.id);
        tally[outcome]++;
        ctx.count(`notifications_${outcome}`);
        ctx.log.warn({ notification: n.id, attempts: n.attempts, kind, status, err }, 'notification not sent');
        return;
      }
      const { rowCount } = await ctx.db.query(`UPDATE notifications SET status = 'sent', sent_at = $3 WHERE ${OWN}`, [...own, ctx.clock.now()]);
      if (rowCount === 0) ctx.log.warn({ notification: n.id }, 'notification sent, but its claim was taken over meanwhile');
      tally.sent++;
      ctx.count('notifications_sent');
    };

    try {
      const { drainBounded } = await import('../../services/bounded.ts');
      // A stop, or the server found unavailable, ends the taking of rows; those in flight finish.
      await drainBounded(next, p.maxConnections, handle, stopped);
    } finally {
      mailer.close();
      toRelease.push(...buffer.splice(0));
      if (toRelease.length > 0) {
        try {
          const ids = toRelease.map((n) => n.id);
          const { rowCount } = await ctx.db.query(
            `UPDATE notifications n SET status = 'pending', attempts = n.attempts - 1, lease_expires_at = NULL
             FROM unnest($1::bigint[], $2::timestamptz[]) AS c(id, claimed_at)
             WHERE n.id = c.id AND n.status = 'sending' AND n.claimed_at = c.claimed_at`,
            [ids, toRelease.map((n) => claims.get(n.id))],
          );
          ctx.count('claims_released', rowCount ?? 0);
        } catch (err) {
          // Left 'sending': a run after the claim's lease takes them over.
          ctx.log.error({ notifications: toRelease.map((n) => n.id), err }, 'unsent claims not put back');
        }
      }
    }
    // Stopped with rows left: Interrupted or TimedOut. A stop after the last row changes nothing.
    if (toRelease.length > 0 || !drained) ctx.signal.throwIfAborted();
    if (unavailable !== undefined) throw new Error('the SMTP server is unavailable; the unsent notifications go out on the retry', { cause: unavailable });
    const remaining = (await due()).n;
    ctx.set('due_remaining', remaining);
    const notSent = [
      tally.cancelled > 0 ? `${tally.cancelled} cancelled ${GONE_REASON}` : '',
      tally.refused > 0 ? `${tally.refused} refused for good by the mail server` : '',
      tally.failed > 0 ? `${tally.failed} failed after ${countNoun(p.maxAttempts, 'attempt')}` : '',
      tally.deferred > 0 ? `${tally.deferred} deferred to the next run` : '',
    ].filter(Boolean);
    return `sent ${countNoun(tally.sent, 'notification')}${notSent.length > 0 ? ` (${notSent.join(', ')})` : ''}; ${remaining} due left`;
  },
});
