// sync.calendar-events on one 10,000-event feed (a tenth of them weekly recurring, with time
// zones) served on loopback: the first sync, then the conditional GET's 304. Figures are printed.
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { DateTime } from 'luxon';
import type pg from 'pg';
import { report } from '../support/bench-report.ts';
import { startFakeIcs, type FakeIcs } from '../support/fake-ics.ts';
import { freshDatabase, migrated, testPool } from '../support/runner-db.ts';
import { buildRunner, runRunner } from '../support/runner-process.ts';

const EVENTS = 10_000;
let url: string;
let db: pg.Pool;
let ics: FakeIcs;

beforeAll(async () => {
  buildRunner();
  url = await migrated(await freshDatabase(inject('pgUrl'), 'bench_calendar'));
  db = testPool(url);
  ics = await startFakeIcs();
  const { rows } = await db.query<{ id: string }>("INSERT INTO users (email, timezone) VALUES ('bench@example.org', 'Europe/Berlin') RETURNING id");
  await db.query('INSERT INTO calendar_feeds (user_id, url) VALUES ($1, $2)', [rows[0]!.id, ics.feedUrl('big')]);
});
afterAll(async () => {
  await ics.close();
  await db.end();
});

function bigFeed(): string {
  const lines = ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//bgtask bench//EN'];
  const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, '');
  const wall = (t: DateTime) => t.toFormat("yyyyMMdd'T'HHmmss");
  const base = Date.now() + 86_400_000;
  for (let i = 0; i < EVENTS; i++) {
    const start = new Date(base + i * 45 * 60_000);
    lines.push('BEGIN:VEVENT', `UID:bench-${i}@example.org`, 'DTSTAMP:20270101T000000Z');
    if (i % 10 === 0) {
      // Berlin wall-clock time on the same day, in office hours, with a weekly rule for 8 weeks.
      // (The UTC digits written as Berlin time put a start in the spring-forward gap whenever
      // the feed spanned the last Sunday of March: an event that ends before it starts, which
      // the task skips, and the benchmark would time a smaller feed. Office hours are never in a DST gap or fold.)
      const local = DateTime.fromJSDate(start, { zone: 'Europe/Berlin' }).set({ hour: 9 + ((i / 10) % 8), minute: 0, second: 0, millisecond: 0 });
      lines.push(`DTSTART;TZID=Europe/Berlin:${wall(local)}`, `DTEND;TZID=Europe/Berlin:${wall(local.plus({ minutes: 30 }))}`, 'RRULE:FREQ=WEEKLY;COUNT=8');
    } else {
      lines.push(`DTSTART:${stamp(start)}Z`, `DTEND:${stamp(new Date(start.getTime() + 30 * 60_000))}Z`);
    }
    lines.push(`SUMMARY:Event number ${i}`, `LOCATION:Room ${i % 40}`, `DESCRIPTION:Agenda for meeting ${i}\\, bring notes`, 'END:VEVENT');
  }
  lines.push('END:VCALENDAR', '');
  return lines.join('\r\n');
}

it(`syncs a ${EVENTS}-event feed`, async () => {
  const feed = bigFeed();
  ics.publish('big', feed);
  const first = await runRunner(['run', 'sync.calendar-events'], { DATABASE_URL: url });
  expect(first.code, first.stdout).toBe(0);
  const stored = first.result!.summary!.events_synced as number;
  expect(stored).toBe(9000 + 1000 * 8);
  const synced = first.lines.find((l) => l.msg === 'feed synced')!;
  const feedMs = synced.ms as number;
  const second = await runRunner(['run', 'sync.calendar-events'], { DATABASE_URL: url });
  expect(second.result?.summary).toMatchObject({ feeds_not_modified: 1 });
  report(`sync.calendar-events: one feed of ${EVENTS} VEVENTs (${(feed.length / 1e6).toFixed(1)} MB, ${stored} rows with the weekly occurrences)`, [
    ['first sync, fetch+parse+store: ms', feedMs],
    ['  of which fetch / parse / store: ms', `${String(synced.fetchMs)} / ${String(synced.parseMs)} / ${String(synced.storeMs)}`],
    ['first sync: feed events/s', Math.round(EVENTS / (feedMs / 1000))],
    ['first sync: stored rows/s', Math.round(stored / (feedMs / 1000))],
    ['first sync, whole run: s', first.result!.durationSeconds ?? 'n/a'],
    ['unchanged feed (304), whole run: s', second.result!.durationSeconds ?? 'n/a'],
  ]);
});
