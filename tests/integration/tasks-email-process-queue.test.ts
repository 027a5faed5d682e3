// email.process-queue as a process against real Redis and a loopback SMTP server reached through
// nodemailer: FIFO delivery with Message-IDs from the item ids, no re-send of an item already
// sent (or of a second copy claimed in the same run), a refused item not retried in the same run, a dead run's items returned after the visibility timeout, dead letters, SMTP down, and
// SIGTERM in the middle without losing or duplicating an e-mail.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { startFakeSmtp, type FakeSmtp } from '../support/fake-smtp.ts';
import { closedPort } from '../support/runner-net.ts';
import { buildRunner, runRunner, startRunner } from '../support/runner-process.ts';

const TASK = 'email.process-queue';
const Q = 'bgtask:{email}';
let redis: Redis;
let smtp: FakeSmtp;
let redisUrl: string;

beforeAll(async () => {
  buildRunner();
  // A database of its own on the shared Redis: FLUSHDB touches no other test file's keys.
  redisUrl = `${inject('redisUrl')}/7`;
  redis = new Redis(redisUrl);
  smtp = await startFakeSmtp();
});
afterAll(async () => {
  await smtp.close();
  redis.disconnect();
});
beforeEach(async () => {
  await redis.flushdb();
  smtp.received.length = 0;
  smtp.behaviour = {};
});

const mail = (id: string, extra: object = {}) => JSON.stringify({ id, to: `${id}@example.org`, subject: `Hello ${id}`, text: `Body of ${id}`, ...extra });
async function enqueue(...items: string[]): Promise<void> {
  for (const item of items) await redis.lpush(`${Q}:queue`, item); // producers LPUSH
}
const env = (extra: Record<string, string> = {}) => ({ REDIS_URL: redisUrl, SMTP_URL: smtp.url, EMAIL_FROM: 'assistant@bgtask.example', ...extra });
const ids = (n: number, prefix = 'm') => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(4, '0')}`);

describe(TASK, () => {
  it('sends every queued e-mail in order, with Message-IDs from the item ids, and leaves nothing behind', async () => {
    const all = ids(30);
    await enqueue(...all.map((id) => mail(id)));
    const exit = await runRunner(['run', TASK], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ sent: 30, duplicates_skipped: 0, dead_lettered: 0, queued_remaining: 0 });
    expect(smtp.received.map((m) => m.messageId).sort()).toEqual(all.map((id) => `<${id}@bgtask.example>`));
    const first = smtp.received.find((m) => m.messageId === '<m-0000@bgtask.example>')!;
    expect(first).toMatchObject({ subject: 'Hello m-0000', from: 'assistant@bgtask.example', to: ['m-0000@example.org'] });
    expect(first.raw).toContain('Body of m-0000');
    expect(await redis.llen(`${Q}:queue`)).toBe(0);
    expect(await redis.llen(`${Q}:processing`)).toBe(0);
    expect(await redis.hlen(`${Q}:claims`)).toBe(0);
    expect(await redis.exists(`${Q}:sent:m-0007`)).toBe(1);
    expect(await redis.ttl(`${Q}:sent:m-0007`)).toBeGreaterThan(167 * 3600);
  });

  it('with one connection, sends in queue order (first in, first out)', async () => {
    await enqueue(...ids(10).map((id) => mail(id)));
    const exit = await runRunner(['run', TASK, '--params', '{"maxConnections":1,"concurrency":1}'], env());
    expect(exit.code).toBe(0);
    expect(smtp.received.map((m) => m.messageId)).toEqual(ids(10).map((id) => `<${id}@bgtask.example>`));
  });

  it('acknowledges without sending an item whose id was already sent (a crash between send and ack)', async () => {
    await redis.set(`${Q}:sent:dup-1`, Date.now());
    await enqueue(mail('dup-1'), mail('new-1'));
    const exit = await runRunner(['run', TASK], env());
    expect(exit.code).toBe(0);
    expect(exit.result?.summary).toMatchObject({ sent: 1, duplicates_skipped: 1 });
    expect(smtp.received.map((m) => m.messageId)).toEqual(['<new-1@bgtask.example>']);
    expect(await redis.llen(`${Q}:queue`)).toBe(0);
  });

  it("returns a dead run's items after the visibility timeout, and leaves a live run's alone", async () => {
    const stale = mail('stale-1');
    const live = mail('live-1');
    await redis.lpush(`${Q}:processing`, stale, live);
    const { time } = { time: await redis.time() };
    const nowMs = Number(time[0]) * 1000;
    await redis.hset(`${Q}:claims`, stale, nowMs - 120_000, live, nowMs - 5_000);
    const exit = await runRunner(['run', TASK, '--params', '{"visibilityTimeoutSeconds":60}'], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ reclaimed: 1, sent: 1 });
    expect(smtp.received.map((m) => m.messageId)).toEqual(['<stale-1@bgtask.example>']);
    expect(await redis.lrange(`${Q}:processing`, 0, -1)).toEqual([live]);
    expect(await redis.hget(`${Q}:attempts`, live)).toBeNull();
  });

  it('sends one of two copies of an item claimed in the same run, and the next run acks the other as a duplicate', async () => {
    await enqueue(mail('twice-1'), mail('twice-1'), mail('once-1'));
    const first = await runRunner(['run', TASK], env());
    expect(first.code, first.stdout).toBe(0);
    expect(first.result?.summary).toMatchObject({ sent: 2, released: 1, queued_remaining: 1 });
    const second = await runRunner(['run', TASK], env());
    expect(second.result?.summary).toMatchObject({ sent: 0, duplicates_skipped: 1, queued_remaining: 0 });
    expect(smtp.received.map((m) => m.messageId).sort()).toEqual(['<once-1@bgtask.example>', '<twice-1@bgtask.example>']);
  });

  // One send at a time: the refused item comes round again in the same run, and must wait for the next.
  it('retries a 4xx refusal in later runs, not again in the same one, and dead-letters it after maxAttempts; a 5xx at once; invalid items at once', async () => {
    smtp.behaviour = {
      refuseRecipient: (a) =>
        a.startsWith('busy') ? { code: 451, message: 'mailbox busy, try later' } : a.startsWith('gone') ? { code: 550, message: 'no such user here' } : undefined,
    };
    await enqueue(mail('busy-1'), mail('gone-1'), 'not json at all', JSON.stringify({ id: 'no-body', to: 'x@example.org', subject: 's' }), mail('ok-1'));
    const params = ['--params', '{"maxAttempts":3,"concurrency":1}'];
    const first = await runRunner(['run', TASK, ...params], env());
    expect(first.code, first.stdout).toBe(0);
    expect(first.result?.summary).toMatchObject({ sent: 1, failed_attempts: 1, dead_lettered: 3, released: 1, queued_remaining: 1 });
    const second = await runRunner(['run', TASK, ...params], env());
    expect(second.result?.summary).toMatchObject({ sent: 0, failed_attempts: 1, dead_lettered: 0, queued_remaining: 1 });
    const third = await runRunner(['run', TASK, ...params], env());
    expect(third.result?.summary).toMatchObject({ sent: 0, failed_attempts: 0, dead_lettered: 1, queued_remaining: 0 });
    const dead = (await redis.lrange(`${Q}:dead`, 0, -1)).map((d) => JSON.parse(d) as { item: string; error: string; attempts: number });
    const byItem = Object.fromEntries(dead.map((d) => [d.item.startsWith('{') ? (JSON.parse(d.item) as { id: string }).id : d.item, d]));
    expect(Object.keys(byItem).sort()).toEqual(['busy-1', 'gone-1', 'no-body', 'not json at all']);
    expect(byItem['busy-1']).toMatchObject({ attempts: 3 });
    expect(byItem['busy-1']!.error).toContain('mailbox busy, try later');
    expect(byItem['gone-1']).toMatchObject({ attempts: 1 });
    expect(byItem['gone-1']!.error).toContain('no such user here');
    expect(byItem['not json at all']!.error).toMatch(/^invalid item: not JSON/);
    expect(byItem['no-body']!.error).toBe('invalid item: text: needs text or html');
    expect(await redis.llen(`${Q}:queue`)).toBe(0);
    expect(await redis.hlen(`${Q}:attempts`)).toBe(0);
  });

  // nodemailer resolves when the server took the message for at least one recipient: the others
  // must not be lost (nor the taken ones sent twice).
  it('sends a mail only once to the recipients taken, retries the one refused with 4xx later, dead-letters the one refused with 5xx', async () => {
    smtp.behaviour = {
      refuseRecipient: (a) =>
        a.startsWith('full') ? { code: 452, message: 'mailbox full' } : a.startsWith('gone') ? { code: 550, message: 'no such user here' } : undefined,
    };
    await enqueue(
      mail('pair-1', { to: ['ok-a@example.org', 'full-a@example.org'] }),
      mail('pair-2', { to: 'ok-b@example.org', cc: 'gone-b@example.org' }),
      mail('both-3', { to: ['full-c@example.org', 'gone-c@example.org'] }),
    );
    const params = ['--params', '{"maxAttempts":3,"concurrency":1}'];
    const first = await runRunner(['run', TASK, ...params], env());
    expect(first.code, first.stdout).toBe(0);
    expect(first.result?.summary).toMatchObject({ sent: 0, partially_sent: 2, recipients_refused: 4, failed_attempts: 2, dead_lettered: 2, queued_remaining: 2 });
    expect(smtp.received.map((m) => [m.messageId, m.to])).toEqual([
      ['<pair-1@bgtask.example>', ['ok-a@example.org']],
      ['<pair-2@bgtask.example>', ['ok-b@example.org']],
    ]);
    const dead = (await redis.lrange(`${Q}:dead`, 0, -1)).map((d) => JSON.parse(d) as { item: string; error: string; attempts: number });
    const deadTo = dead.map((d) => JSON.parse(d.item) as { id: string; resend: { to: string[] } });
    expect(deadTo.map((d) => [d.id, d.resend.to]).sort()).toEqual([['both-3', ['gone-c@example.org']], ['pair-2', ['gone-b@example.org']]]);
    for (const d of dead) expect(d.error).toMatch(/^gone-.@example\.org: .*550.*no such user here/);

    // The server takes them now: only the deferred recipients get the message, under its Message-ID.
    smtp.received.length = 0;
    smtp.behaviour = {};
    const second = await runRunner(['run', TASK, ...params], env());
    expect(second.code, second.stdout).toBe(0);
    expect(second.result?.summary).toMatchObject({ sent: 2, partially_sent: 0, dead_lettered: 0, queued_remaining: 0 });
    expect(smtp.received.map((m) => [m.messageId, m.to]).sort()).toEqual([
      ['<both-3@bgtask.example>', ['full-c@example.org']],
      ['<pair-1@bgtask.example>', ['full-a@example.org']],
    ]);
    // The headers are the original message's: both addressees, as the first copy showed them.
    expect(smtp.received.find((m) => m.messageId === '<pair-1@bgtask.example>')!.raw).toMatch(/^To: ok-a@example\.org, full-a@example\.org$/m);
    expect(await redis.llen(`${Q}:processing`)).toBe(0);
    expect(await redis.hlen(`${Q}:attempts`)).toBe(0);
    const third = await runRunner(['run', TASK, ...params], env());
    expect(third.result?.summary).toMatchObject({ sent: 0, queued_remaining: 0 });
    // A dead letter of both-3 put back by hand (its mailbox fixed) is sent: its part is not the
    // retry part's just delivered, so it is not taken for a duplicate.
    smtp.received.length = 0;
    await enqueue(dead.find((d) => d.item.includes('both-3'))!.item);
    const replayed = await runRunner(['run', TASK, ...params], env());
    expect(replayed.result?.summary).toMatchObject({ sent: 1, duplicates_skipped: 0 });
    expect(smtp.received.map((m) => [m.messageId, m.to])).toEqual([['<both-3@bgtask.example>', ['gone-c@example.org']]]);
  });

  it('when SMTP is down, keeps every item queued in order and exits 1', async () => {
    const items = ids(12).map((id) => mail(id));
    await enqueue(...items);
    const before = await redis.lrange(`${Q}:queue`, 0, -1);
    const port = await closedPort();
    const exit = await runRunner(['run', TASK], env({ SMTP_URL: `smtp://127.0.0.1:${port}` }));
    expect(exit.code, exit.stdout).toBe(1);
    expect(exit.result?.message).toContain('the SMTP server is unavailable; the unsent e-mails stay queued');
    expect(exit.result?.message).toContain('ECONNREFUSED');
    expect(await redis.lrange(`${Q}:queue`, 0, -1)).toEqual(before);
    expect(await redis.llen(`${Q}:processing`)).toBe(0);
    expect(await redis.hlen(`${Q}:attempts`)).toBe(0);
    expect(await redis.llen(`${Q}:dead`)).toBe(0);
  });

  it('on SIGTERM mid-queue, returns in-flight items to the queue, exits 143, and loses or repeats no e-mail', async () => {
    const all = ids(60, 'term');
    await enqueue(...all.map((id) => mail(id)));
    smtp.behaviour = { dataDelayMs: 100 };
    const runner = startRunner(['run', TASK, '--params', '{"maxConnections":2,"concurrency":4,"batchSize":10}'], env());
    const deadline = Date.now() + 30_000;
    while (smtp.received.length < 5) {
      if (Date.now() > deadline || runner.child.exitCode !== null) throw new Error(`no e-mail sent:\n${runner.lines.map((l) => JSON.stringify(l)).join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    runner.child.kill('SIGTERM');
    const exit = await runner.exit;
    expect(exit.code, exit.stdout).toBe(143);
    expect(exit.result?.outcome).toBe('Interrupted');
    const sentFirst = smtp.received.length;
    expect(sentFirst).toBeLessThan(60);
    expect(await redis.llen(`${Q}:processing`)).toBe(0);
    expect(await redis.llen(`${Q}:queue`)).toBe(60 - sentFirst);
    expect(exit.result?.summary?.sent).toBe(sentFirst);

    smtp.behaviour = {};
    const rest = await runRunner(['run', TASK], env());
    expect(rest.code, rest.stdout).toBe(0);
    const messageIds = smtp.received.map((m) => m.messageId);
    expect(messageIds).toHaveLength(60);
    expect(new Set(messageIds)).toEqual(new Set(all.map((id) => `<${id}@bgtask.example>`)));
  });

  it('refuses a missing SMTP_URL with exit 2', async () => {
    const exit = await runRunner(['run', TASK], { REDIS_URL: redisUrl });
    expect(exit.code).toBe(2);
    expect(exit.result?.message).toBe('invalid configuration: email.process-queue requires SMTP_URL, not set');
  });
});
