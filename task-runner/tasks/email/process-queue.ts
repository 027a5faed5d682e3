import * as z from 'zod';
import { describeError } from '../../errors.ts';
import { defineTask } from '../../task.ts';
import { countNoun } from '../../count-noun.ts';
import type { RefusedRecipient } from '../../services/smtp.ts';
import type { MailItem } from './mail-item.ts';

export default defineTask({
  name: 'email.process-queue',
  family: 'email',
  description: 'Sends the e-mails queued in Redis through SMTP: reliable queue, idempotent sends, dead letters after repeated failures',
  params: z.strictObject({
    queue: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/).default('email').describe('queue name: keys are bgtask:{<queue>}:queue, :processing, :dead …'),
    from: z.string().min(3).optional().describe('sender of items that name none (else EMAIL_FROM)'),
    messageIdDomain: z.string().min(1).optional().describe("domain of the Message-IDs (else the sender's)"),
    maxMessages: z.int().min(1).max(1_000_000).default(50_000).describe('items per run at most'),
    batchSize: z.int().min(1).max(1000).default(100).describe('items moved to processing per claim'),
    maxConnections: z.int().min(1).max(50).default(5).describe('pooled SMTP connections'),
    concurrency: z.int().min(1).max(500).default(20).describe('sends in flight at once'),
    maxAttempts: z.int().min(1).max(100).default(5).describe('failed attempts before an item goes to the dead-letter list'),
    // Longer than the task's hard timeout (280 s): a live run's claims never expire under it.
    visibilityTimeoutSeconds: z.int().min(10).max(86_400).default(300).describe('a claim older than this belongs to a dead run: its item returns to the queue'),
    idempotencyTtlHours: z.int().min(1).max(24 * 90).default(168).describe('how long a sent id is remembered'),
    smtpTimeoutSeconds: z.int().min(1).max(600).default(30).describe('connect, greeting and socket timeout'),
    stopGraceSeconds: z.number().min(0).max(60).default(5).describe('after a stop, how long sends in flight may finish before the connections are cut'),
  }),
  defaults: {
    schedule: '*/5 * * * *',
    retry: { maxRetries: 3, delaySeconds: 300, backoff: 'Fixed' },
    timeoutSeconds: 280,
    softTimeoutSeconds: 240,
  },
  needs: { redis: true },
  async run(ctx) {
    const p = ctx.params;
    const env = ctx.requireSettings(['SMTP_URL']);
    const [{ reliableQueue }, { openMailer, classifyFailure, refusedRecipients, senderDomain }, { parseMailItem, messageIdFor, handledKey }] = await Promise.all([
      import('../../services/reliable-queue.ts'),
      import('../../services/smtp.ts'),
      import('./mail-item.ts'),
    ]);
    const defaultFrom = p.from ?? env.EMAIL_FROM;
    const queue = reliableQueue(ctx.redis, p.queue, {
      visibilityMs: p.visibilityTimeoutSeconds * 1000,
      maxAttempts: p.maxAttempts,
      handledTtlSeconds: p.idempotencyTtlHours * 3600,
    });

    if (ctx.dryRun) {
      const [queued, processing, dead] = await Promise.all([ctx.redis.llen(queue.keys.queue), ctx.redis.llen(queue.keys.processing), ctx.redis.llen(queue.keys.dead)]);
      ctx.set('queued', queued);
      ctx.set('processing', processing);
      ctx.set('dead_letters', dead);
      return `dry run: ${countNoun(Math.min(queued, p.maxMessages), 'e-mail')} would be sent`;
    }

    for (const key of ['sent', 'partially_sent', 'recipients_refused', 'duplicates_skipped', 'failed_attempts', 'dead_lettered', 'released']) ctx.count(key, 0);
    const reclaimed = await queue.reclaimExpired();
    ctx.set('reclaimed', reclaimed.requeued);
    ctx.count('dead_lettered', reclaimed.dead);
    if (reclaimed.requeued + reclaimed.dead > 0) ctx.log.warn(reclaimed, 'items of a dead run returned from processing');

    const mailer = await openMailer(env.SMTP_URL, { pool: true, maxConnections: p.maxConnections, timeoutMs: p.smtpTimeoutSeconds * 1000 });
    let unavailable: unknown;
    let cut = false;
    // After a stop, sends in flight get a moment to finish (their items are then acked, not sent
    // twice); then the connections are cut and what is left fails and goes back to the queue.
    const onAbort = () => setTimeout(() => ((cut = true), mailer.close()), p.stopGraceSeconds * 1000).unref();
    ctx.signal.addEventListener('abort', onAbort, { once: true });

    const buffer: string[] = [];
    // Items not sent because the run stops or SMTP is down go back to the front of the queue
    // together at the end, newest first, so the queue keeps its order.
    const toRelease: string[] = [];
    const claimOrder = new Map<string, number>();
    // A refused item goes to the back of the queue; claimed again in this run, the run has come
    // round the whole queue: it goes back untried and the run stops claiming, so its next attempt
    // is the next run's (the retry delay), not seconds later until maxAttempts dead-letters it.
    const refusedThisRun = new Set<string>();
    // Ids this run has started: a second copy of one (a producer's repeated push) claimed in the
    // same run is not sent beside the first but returned, and the next run acks it if the first was sent.
    const startedIds = new Set<string>();
    let claimedTotal = 0;
    let drained = false;
    let sent = 0;
    let claiming: Promise<void> | undefined;
    const stopped = () => ctx.signal.aborted || unavailable !== undefined;
    const next = async (): Promise<string | undefined> => {
      while (buffer.length === 0) {
        if (stopped() || drained || claimedTotal >= p.maxMessages) return undefined;
        claiming ??= queue.claim(Math.min(p.batchSize, p.maxMessages - claimedTotal)).then((items) => {
          for (const item of items) {
            claimOrder.set(item, claimedTotal++);
            if (refusedThisRun.has(item)) {
              toRelease.push(item);
              drained = true;
            } else {
              buffer.push(item);
            }
          }
          if (items.length === 0) drained = true;
        }).finally(() => (claiming = undefined));
        await claiming;
      }
      // Claimed but not started when the run stops: back to the front of the queue, in order.
      if (stopped()) return undefined;
      return buffer.shift();
    };

    // Some recipients refused, others not (taken, or refused for now): the item is acked, so what
    // was delivered is never sent again, and its refused recipients are handled as a refused
    // single-recipient item is: those refused for now (4xx) go back to the queue as an item of
    // their own, retried by a later run; those refused for good (5xx) to the dead letters with the
    // server's reply.
    const settleRefused = async (raw: string, item: MailItem, refused: RefusedRecipient[]) => {
      const permanent = refused.filter((r) => classifyFailure(r.error) === 'permanent');
      const deferred = refused.filter((r) => !permanent.includes(r));
      // Each part its own number, so its own idempotency key: a dead letter re-queued by hand once
      // the mailbox is fixed is sent, not taken for the retry part already delivered.
      const part = (item.resend?.part ?? 0) + 1;
      const partOf = (recipients: RefusedRecipient[], n: number) =>
        recipients.length === 0
          ? undefined
          : {
              item: JSON.stringify({ ...item, resend: { part: n, to: recipients.map((r) => r.address) } }),
              error: recipients.map((r) => `${r.address}: ${describeError(r.error)}`).join('; '),
            };
      const retry = partOf(deferred, part);
      const outcome = await queue.ackPartial(raw, handledKey(item), { retry, dead: partOf(permanent, part + 1) });
      if (outcome === 'requeued') refusedThisRun.add(retry!.item);
      ctx.count('recipients_refused', refused.length);
      ctx.count('failed_attempts', outcome === 'requeued' ? 1 : 0);
      ctx.count('dead_lettered', (outcome === 'dead' ? 1 : 0) + (permanent.length > 0 ? 1 : 0));
      ctx.log.warn({ id: item.id, part, deferred: deferred.map((r) => r.address), refused: permanent.map((r) => r.address), outcome }, 'recipients refused');
    };

    const handle = async (raw: string) => {
      const parsed = parseMailItem(raw);
      if ('problem' in parsed) {
        await queue.fail(raw, `invalid item: ${parsed.problem}`, true);
        ctx.count('dead_lettered');
        ctx.log.error({ problem: parsed.problem }, 'invalid queue item dead-lettered');
        return;
      }
      const { item } = parsed;
      const key = handledKey(item);
      if (await queue.wasHandled(key)) {
        // Sent by a run that died before its ack, or enqueued twice: acknowledged, not sent again.
        await queue.ack(raw, key);
        ctx.count('duplicates_skipped');
        return;
      }
      if (startedIds.has(key)) {
        toRelease.push(raw);
        return;
      }
      startedIds.add(key);
      const from = item.from ?? defaultFrom;
      if (!from) {
        await queue.fail(raw, 'no sender: the item names none and neither the from param nor EMAIL_FROM is set', true);
        ctx.count('dead_lettered');
        return;
      }
      const domain = p.messageIdDomain ?? senderDomain(from);
      const { id, resend, ...mail } = item;
      let refused: RefusedRecipient[];
      try {
        ({ refused } = await mailer.send({ ...mail, from, messageId: messageIdFor(id, domain), envelopeTo: resend?.to }));
      } catch (err) {
        const kind = classifyFailure(err);
        if (cut || kind === 'unavailable') {
          if (!cut) unavailable ??= err;
          toRelease.push(raw);
          return;
        }
        // Every recipient refused, some for now and some for good: each kind goes its own way.
        const everyRefusal = refusedRecipients(err);
        const kinds = new Set(everyRefusal.map((r) => classifyFailure(r.error) === 'permanent'));
        if (kinds.size > 1) return settleRefused(raw, item, everyRefusal);
        const outcome = await queue.fail(raw, describeError(err), kind === 'permanent');
        if (outcome === 'requeued') refusedThisRun.add(raw);
        ctx.count(outcome === 'dead' ? 'dead_lettered' : 'failed_attempts');
        ctx.log.warn({ id: item.id, kind, outcome, err }, 'e-mail refused');
        return;
      }
      if (refused.length > 0) {
        ctx.count('partially_sent');
        return settleRefused(raw, item, refused);
      }
      await queue.ack(raw, key);
      ctx.count('sent');
      sent++;
    };

    try {
      const { drainBounded } = await import('../../services/bounded.ts');
      await drainBounded(next, p.concurrency, handle);
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      toRelease.push(...buffer.splice(0));
      toRelease.sort((a, b) => claimOrder.get(b)! - claimOrder.get(a)!);
      for (const raw of toRelease) {
        await queue.release(raw);
        ctx.count('released');
      }
      mailer.close();
    }
    ctx.signal.throwIfAborted();
    if (unavailable !== undefined) {
      throw new Error('the SMTP server is unavailable; the unsent e-mails stay queued', { cause: unavailable });
    }
    const remaining = await ctx.redis.llen(queue.keys.queue);
    ctx.set('queued_remaining', remaining);
    return `sent ${countNoun(sent, 'e-mail')}; ${remaining} left in the queue`;
  },
});
