// email.process-queue throughput into a loopback SMTP server, with every reliable-queue guarantee
// on (claim records, sent-id check and record per item, ack by LREM). Figures are printed, not asserted.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { report } from '../support/bench-report.ts';
import { startFakeSmtp, type FakeSmtp } from '../support/fake-smtp.ts';
import { buildRunner, runRunner } from '../support/runner-process.ts';

const TASK = 'email.process-queue';
const COUNT = 10_000;
let redis: Redis;
let redisUrl: string;
let smtp: FakeSmtp;

beforeAll(async () => {
  buildRunner();
  redisUrl = `${inject('redisUrl')}/8`;
  redis = new Redis(redisUrl);
  smtp = await startFakeSmtp();
});
afterAll(async () => {
  await smtp.close();
  redis.disconnect();
});

async function fill(n: number): Promise<void> {
  await redis.flushdb();
  for (let i = 0; i < n; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, n - i) }, (_, j) =>
      JSON.stringify({ id: `bench-${i + j}`, to: `user${(i + j) % 50}@example.org`, subject: `Reminder ${i + j}`, text: 'Your appointment is tomorrow at 10:00.\n'.repeat(5) }),
    );
    await redis.lpush('bgtask:{email}:queue', ...batch);
  }
}

it(`sends ${COUNT} queued e-mails`, async () => {
  const rows: Array<[string, string | number]> = [];
  for (const [label, params] of [
    ['defaults (5 connections, 20 in flight)', {}],
    ['10 connections, 40 in flight', { maxConnections: 10, concurrency: 40 }],
  ] as const) {
    await fill(COUNT);
    smtp.received.length = 0;
    const started = performance.now();
    const exit = await runRunner(['run', TASK, '--params', JSON.stringify(params)], { REDIS_URL: redisUrl, SMTP_URL: smtp.url, EMAIL_FROM: 'bench@bgtask.example' });
    const wallS = (performance.now() - started) / 1000;
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary?.sent).toBe(COUNT);
    expect(smtp.received).toHaveLength(COUNT);
    const taskS = exit.result!.durationSeconds ?? wallS;
    rows.push([`${label}: e-mails/s (run)`, Math.round(COUNT / taskS)], [`${label}: e-mails/s (process wall)`, Math.round(COUNT / wallS)]);
  }
  report(`email.process-queue: ${COUNT} e-mails into a loopback SMTP server`, rows);
});
