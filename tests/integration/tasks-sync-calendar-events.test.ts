// sync.calendar-events as a process against real Postgres and ICS feeds served on loopback,
// parsed by ical.js: recurrences with EXDATE and overrides, time zones, conditional GETs, events
// removed when gone from the feed, overlapping events counted, a malformed feed failing only its
// own user, an unreadable event skipped without failing its feed, one user's feeds stored one at a
// time, and an e-mail notification queued for each upcoming event new to the user in a feed synced
// before (once, however long it has no occurrence in the window; cancelled when it leaves the
// user's calendars first, or its calendar's feed is removed, even after the row it named went);
// the upgrade to migration 0017 announcing none of the events stored, and to 0018 still cancelling
// the notifications queued before it.
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { DateTime } from 'luxon';
import type pg from 'pg';
import { calendar, startFakeIcs, vevent, type FakeIcs } from '../support/fake-ics.ts';
import { freshDatabase, migrated, testPool } from '../support/runner-db.ts';
import { buildRunner, runRunner } from '../support/runner-process.ts';

const TASK = 'sync.calendar-events';
const ADA_ICS = readFileSync(resolve(import.meta.dirname, '../fixtures/tasks/calendar-ada.ics'), 'utf8');
// The fixture's events are in March 2027; the window reaches them wherever "now" is.
const WIDE = JSON.stringify({ pastDays: 3650, futureDays: 3650 });
let url: string;
let db: pg.Pool;
let ics: FakeIcs;
let ada: string;
let bob: string;

beforeAll(async () => {
  buildRunner();
  url = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_sync_calendar'));
  db = testPool(url);
  ics = await startFakeIcs();
  ada = (await db.query<{ id: string }>("INSERT INTO users (email, timezone) VALUES ('ada@example.org', 'Europe/Berlin') RETURNING id")).rows[0]!.id;
  bob = (await db.query<{ id: string }>("INSERT INTO users (email, timezone) VALUES ('bob@example.org', 'America/New_York') RETURNING id")).rows[0]!.id;
  await db.query('INSERT INTO calendar_feeds (user_id, url) VALUES ($1, $2), ($3, $4)', [ada, ics.feedUrl('ada'), bob, ics.feedUrl('bob')]);
});
afterAll(async () => {
  await ics.close();
  await db.end();
});
beforeEach(async () => {
  await db.query('TRUNCATE calendar_events, calendar_event_uids, notifications, task_runs');
  await db.query('UPDATE calendar_feeds SET etag = NULL, last_modified = NULL, last_status = NULL, last_error = NULL, expanded_at = NULL, expanded_timezone = NULL');
  await db.query("UPDATE users SET timezone = 'Europe/Berlin' WHERE id = $1", [ada]);
  ics.requests.length = 0;
});

const env = () => ({ DATABASE_URL: url });
async function events(user: string) {
  const { rows } = await db.query(
    `SELECT uid, recurrence_id, summary, starts_at, ends_at, all_day, status, sequence, rrule IS NOT NULL AS recurring
     FROM calendar_events WHERE user_id = $1 ORDER BY starts_at, uid`,
    [user],
  );
  return rows as { uid: string; recurrence_id: Date | null; summary: string; starts_at: Date; ends_at: Date | null; all_day: boolean; status: string; sequence: number; recurring: boolean }[];
}
const iso = (d: Date | null) => d?.toISOString() ?? null;
/** A VEVENT of `vevent` with more lines (RRULE, LOCATION, STATUS, ...). */
const withLines = (event: string, ...lines: string[]) => event.replace('END:VEVENT', [...lines, 'END:VEVENT'].join('\r\n'));

describe(TASK, () => {
  it('stores occurrences with EXDATE and overrides applied, in the right time zones', async () => {
    ics.publish('ada', ADA_ICS);
    ics.publish('bob', calendar(vevent('b-1', new Date('2027-03-02T14:00:00Z'), new Date('2027-03-02T15:00:00Z'), 'Bob meeting')));
    const exit = await runRunner(['run', TASK, '--params', WIDE], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ feeds: 2, feeds_synced: 2, feeds_failed: 0, events_synced: 9, events_removed: 0 });
    const rows = (await events(ada)).map((e) => [e.uid, iso(e.recurrence_id), e.summary, iso(e.starts_at), iso(e.ends_at), e.all_day, e.status]);
    expect(rows).toEqual([
      // Mondays 10:00 Berlin: CET (UTC+1) before 28 March, CEST (UTC+2) after.
      ['standup-7f3a@google.com', '2027-03-01T09:00:00.000Z', 'Team standup', '2027-03-01T09:00:00.000Z', '2027-03-01T09:30:00.000Z', false, 'confirmed'],
      ['standup-7f3a@google.com', '2027-03-08T09:00:00.000Z', 'Team standup (moved)', '2027-03-08T10:30:00.000Z', '2027-03-08T11:00:00.000Z', false, 'confirmed'],
      // All day in the user's zone (Berlin midnight).
      ['birthday-91c2@google.com', null, "Grace's birthday", '2027-03-09T23:00:00.000Z', '2027-03-10T23:00:00.000Z', true, 'confirmed'],
      ['dentist-44d1@google.com', null, 'Dentist', '2027-03-12T15:00:00.000Z', '2027-03-12T16:00:00.000Z', false, 'tentative'],
      // Floating 09:00 is the user's 09:00.
      ['floating-0b7e@example.org', null, 'Saturday run (floating time)', '2027-03-13T08:00:00.000Z', '2027-03-13T10:00:00.000Z', false, 'confirmed'],
      // 15 March is an EXDATE: no row.
      ['standup-7f3a@google.com', '2027-03-22T09:00:00.000Z', 'Team standup', '2027-03-22T09:00:00.000Z', '2027-03-22T09:30:00.000Z', false, 'cancelled'],
      ['standup-7f3a@google.com', '2027-03-29T08:00:00.000Z', 'Team standup', '2027-03-29T08:00:00.000Z', '2027-03-29T08:30:00.000Z', false, 'confirmed'],
      ['standup-7f3a@google.com', '2027-04-05T08:00:00.000Z', 'Team standup', '2027-04-05T08:00:00.000Z', '2027-04-05T08:30:00.000Z', false, 'confirmed'],
    ]);
    expect((await events(ada)).filter((e) => e.uid.startsWith('standup')).every((e) => e.recurring)).toBe(true);
    expect((await events(bob)).map((e) => e.summary)).toEqual(['Bob meeting']);
    const feeds = await db.query("SELECT last_status, etag IS NOT NULL AS has_etag, last_modified IS NOT NULL AS has_lm FROM calendar_feeds ORDER BY user_id");
    expect(feeds.rows).toEqual([
      { last_status: 'synced', has_etag: true, has_lm: true },
      { last_status: 'synced', has_etag: true, has_lm: true },
    ]);
  });

  it('sends the validators next time and does nothing on 304', async () => {
    const etag = ics.publish('ada', ADA_ICS);
    ics.publish('bob', calendar());
    expect((await runRunner(['run', TASK, '--params', WIDE], env())).code).toBe(0);
    const before = await db.query('SELECT id, synced_at FROM calendar_events ORDER BY id');
    ics.requests.length = 0;
    const again = await runRunner(['run', TASK, '--params', WIDE], env());
    expect(again.code, again.stdout).toBe(0);
    expect(again.result?.summary).toMatchObject({ feeds_not_modified: 2, feeds_synced: 0, events_synced: 0 });
    const adaRequest = ics.requests.find((r) => r.path === '/feeds/ada.ics')!;
    expect(adaRequest.headers['if-none-match']).toBe(etag);
    expect(adaRequest.headers['if-modified-since']).toBeTruthy();
    expect((await db.query('SELECT id, synced_at FROM calendar_events ORDER BY id')).rows).toEqual(before.rows);
  });

  it('still fetches and expands an unchanged feed whole once its expansion is a day old, or its user moved zone', async () => {
    ics.publish('ada', ADA_ICS);
    ics.publish('bob', calendar());
    expect((await runRunner(['run', TASK, '--params', WIDE], env())).code).toBe(0);
    // A day later the stored occurrences reach a day less far: fetched without validators.
    await db.query("UPDATE calendar_feeds SET expanded_at = expanded_at - interval '25 hours' WHERE user_id = $1", [ada]);
    ics.requests.length = 0;
    const later = await runRunner(['run', TASK, '--params', WIDE], env());
    expect(later.code, later.stdout).toBe(0);
    expect(later.result?.summary).toMatchObject({ feeds_synced: 1, feeds_not_modified: 1 });
    expect(ics.requests.find((r) => r.path === '/feeds/ada.ics')!.headers['if-none-match']).toBeUndefined();
    expect(ics.requests.find((r) => r.path === '/feeds/bob.ics')!.headers['if-none-match']).toBeTruthy();
    // Ada moves to Lisbon: her floating and all-day events are hers in the new zone.
    await db.query("UPDATE users SET timezone = 'Europe/Lisbon' WHERE id = $1", [ada]);
    const moved = await runRunner(['run', TASK, '--params', WIDE], env());
    expect(moved.result?.summary).toMatchObject({ feeds_synced: 1, feeds_not_modified: 1 });
    const birthday = (await events(ada)).find((e) => e.uid.startsWith('birthday'))!;
    expect(iso(birthday.starts_at)).toBe('2027-03-10T00:00:00.000Z'); // Lisbon midnight (UTC+0 in March)
    expect((await db.query('SELECT expanded_timezone FROM calendar_feeds WHERE user_id = $1', [ada])).rows).toEqual([{ expanded_timezone: 'Europe/Lisbon' }]);
  });

  it('updates changed events and removes the ones gone from the feed', async () => {
    const soon = (h: number) => new Date(Date.now() + h * 3600_000);
    ics.publish('ada', calendar(vevent('keep', soon(1), soon(2), 'Keep'), vevent('change', soon(3), soon(4), 'Before'), vevent('drop', soon(5), soon(6), 'Drop')));
    ics.publish('bob', calendar());
    expect((await runRunner(['run', TASK], env())).code).toBe(0);
    ics.publish('ada', calendar(vevent('keep', soon(1), soon(2), 'Keep'), vevent('change', soon(3), soon(4), 'After')));
    const exit = await runRunner(['run', TASK], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ feeds_synced: 1, feeds_not_modified: 1, events_synced: 2, events_removed: 1 });
    expect((await events(ada)).map((e) => [e.uid, e.summary])).toEqual([
      ['keep', 'Keep'],
      ['change', 'After'],
    ]);
  });

  it('counts overlapping events in the coming days as conflicts', async () => {
    const at = (h: number) => new Date(Date.now() + h * 3600_000);
    ics.publish(
      'ada',
      calendar(
        vevent('a', at(24), at(26)), // overlaps b and c
        vevent('b', at(25), at(27)), // overlaps c
        vevent('c', at(25.5), at(25.75)),
        vevent('d', at(27), at(28)), // starts as b ends: no conflict
        vevent('far', at(24 * 30), at(24 * 30 + 5)), // outside the 14-day window
        vevent('far2', at(24 * 30 + 1), at(24 * 30 + 2)),
      ),
    );
    ics.publish('bob', calendar());
    const exit = await runRunner(['run', TASK], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ conflicts: 3, events_synced: 6 });
  });

  it("fails a malformed feed's user with the parser's message, syncs the others, keeps the old events and exits 1", async () => {
    ics.publish('ada', ADA_ICS);
    ics.publish('bob', calendar(vevent('b-1', new Date('2027-03-02T14:00:00Z'), new Date('2027-03-02T15:00:00Z'), 'Bob meeting')));
    expect((await runRunner(['run', TASK, '--params', WIDE], env())).code).toBe(0);
    ics.publish('ada', ADA_ICS.replace('SUMMARY:Dentist', 'SUMMARY Dentist'));
    ics.publish('bob', calendar(vevent('b-2', new Date('2027-03-03T14:00:00Z'), new Date('2027-03-03T15:00:00Z'), 'Bob lunch')));
    const exit = await runRunner(['run', TASK, '--params', WIDE], env());
    expect(exit.code, exit.stdout).toBe(1);
    expect(exit.result?.summary).toMatchObject({ feeds_failed: 1, feeds_synced: 1, events_synced: 1 });
    expect(exit.result?.message).toContain(`1 of 2 calendar feeds failed to sync: user ${ada} calendar default: invalid line (no token ";" or ":") "SUMMARY Dentist"`);
    expect((await events(ada))).toHaveLength(8); // untouched
    expect((await events(bob)).map((e) => e.summary)).toEqual(['Bob lunch']);
    const { rows } = await db.query('SELECT last_status, last_error FROM calendar_feeds WHERE user_id = $1', [ada]);
    expect(rows[0]).toMatchObject({ last_status: 'failed' });
    expect(rows[0].last_error).toContain('invalid line');
  });

  it('skips an event it cannot read, syncs the rest of the feed, keeps the stored copy of that event, and succeeds saying so', async () => {
    const soon = (h: number) => new Date(Date.now() + h * 3600_000);
    ics.publish('ada', calendar(vevent('keep', soon(1), soon(2), 'Keep'), vevent('bad', soon(3), soon(4), 'Was fine')));
    ics.publish('bob', calendar());
    expect((await runRunner(['run', TASK], env())).code).toBe(0);

    // The organiser's client now writes an end before the start: unreadable, but still in the feed.
    ics.publish('ada', calendar(vevent('keep', soon(1), soon(2), 'Kept'), vevent('bad', soon(4), soon(3), 'Broken'), vevent('new', soon(5), soon(6), 'New')));
    const exit = await runRunner(['run', TASK], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ feeds_synced: 1, feeds_failed: 0, events_synced: 2, events_skipped: 1, events_removed: 0 });
    expect(exit.result?.message).toMatch(new RegExp(`^synced 2 calendar feeds; 1 synced without some events \\(their stored copies kept\\): user ${ada} calendar default: 1 event skipped: event bad ends \\(.+\\) before it starts \\(.+\\)$`));
    expect((await events(ada)).map((e) => [e.uid, e.summary])).toEqual([
      ['keep', 'Kept'],
      ['bad', 'Was fine'],
      ['new', 'New'],
    ]);
    const feedRow = async () => (await db.query('SELECT last_status, last_error FROM calendar_feeds WHERE user_id = $1', [ada])).rows[0];
    expect(await feedRow()).toMatchObject({ last_status: 'synced', last_error: expect.stringMatching(/^1 event skipped: event bad ends/) });

    // Unchanged feed (304): what was skipped is still skipped, and still said.
    expect((await runRunner(['run', TASK], env())).code).toBe(0);
    expect(await feedRow()).toMatchObject({ last_status: 'not_modified', last_error: expect.stringMatching(/^1 event skipped/) });

    // Gone from the feed: now it goes from the table too, and the feed is clean.
    ics.publish('ada', calendar(vevent('keep', soon(1), soon(2), 'Kept'), vevent('new', soon(5), soon(6), 'New')));
    const after = await runRunner(['run', TASK], env());
    expect(after.result?.summary).toMatchObject({ events_skipped: 0, events_removed: 1 });
    expect((await events(ada)).map((e) => e.uid)).toEqual(['keep', 'new']);
    expect(await feedRow()).toMatchObject({ last_status: 'synced', last_error: null });
  });

  it("stores one user's feeds one at a time without holding the pool's clients meanwhile: the other feeds still get one", async () => {
    const extra = ['c1', 'c2', 'c3', 'c4'];
    const soon = (h: number) => new Date(Date.now() + h * 3600_000);
    for (const c of extra) {
      await db.query('INSERT INTO calendar_feeds (user_id, calendar_id, url) VALUES ($1, $2, $3)', [ada, c, ics.feedUrl(`ada-${c}`)]);
      ics.publish(`ada-${c}`, calendar(vevent(`${c}-event`, soon(1), soon(2))));
    }
    ics.publish('ada', calendar(vevent('a-event', soon(1), soon(2))));
    ics.publish('bob', calendar(vevent('b-event', soon(1), soon(2))));
    // Each store lasts 1.5 s (its last statement waits), longer than a query may wait for one of
    // the runner's 4 pool clients (BGTASK_CONNECT_TIMEOUT_SECONDS 1); Ada's five wait for each other.
    await db.query('CREATE FUNCTION slow_store() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1.5); RETURN NEW; END $$');
    await db.query("CREATE TRIGGER slow_store BEFORE UPDATE ON calendar_feeds FOR EACH ROW WHEN (NEW.last_status = 'synced') EXECUTE FUNCTION slow_store()");
    try {
      const exit = await runRunner(['run', TASK, '--params', JSON.stringify({ concurrency: 6 })], { ...env(), BGTASK_CONNECT_TIMEOUT_SECONDS: '1' });
      expect(exit.code, exit.stdout).toBe(0);
      expect(exit.result?.summary).toMatchObject({ feeds: 6, feeds_synced: 6, feeds_failed: 0, events_synced: 6 });
    } finally {
      await db.query('DROP TRIGGER slow_store ON calendar_feeds');
      await db.query('DROP FUNCTION slow_store()');
      await db.query('DELETE FROM calendar_feeds WHERE user_id = $1 AND calendar_id = ANY($2)', [ada, extra]);
    }
  });

  it('fails a user whose feed answers 500, naming the host but not the URL', async () => {
    ics.publish('ada', calendar());
    ics.fail('bob', { status: 500, body: 'oops' });
    const exit = await runRunner(['run', TASK], env());
    expect(exit.code).toBe(1);
    expect(exit.result?.message).toContain(`user ${bob} calendar default: GET ${new URL(ics.url).host} answered HTTP 500 Internal Server Error`);
    expect(exit.result?.message).not.toContain('/feeds/bob.ics');
  });
});

describe(`${TASK}: notifications of new events`, () => {
  const DAY = 86_400_000;
  /** Today (UTC) as the test began: every day() of a test counts from it, also one running across midnight. */
  let today = 0;
  /** `n` days from today (UTC), at hour:00 UTC. */
  const day = (n: number, hour: number) => new Date(today + n * DAY + hour * 3_600_000);
  const berlin = (d: Date, format: string) => DateTime.fromJSDate(d, { zone: 'Europe/Berlin' }).setLocale('en-GB').toFormat(format);
  const when = (start: Date, end: Date) => `When: ${berlin(start, 'cccc d LLLL yyyy, HH:mm')}–${berlin(end, 'HH:mm')} (Europe/Berlin)`;

  /** An event the day after tomorrow, in Ada's feed from its first sync on. */
  let keep = '';
  beforeEach(() => {
    today = Math.floor(Date.now() / DAY) * DAY;
    keep = vevent('keep', day(2, 9), day(2, 10), 'Keep');
  });
  /** Ada's feeds are fetched whole by the next sync, changed or not (as once their expansion is a day old). */
  const refetch = () => db.query('UPDATE calendar_feeds SET etag = NULL, last_modified = NULL WHERE user_id = $1', [ada]);
  /** Ada's calendar `calendar` with its feed, for the length of `body`. */
  async function withFeed(calendar: string, body: () => Promise<void>): Promise<void> {
    await db.query('INSERT INTO calendar_feeds (user_id, calendar_id, url) VALUES ($1, $2, $3)', [ada, calendar, ics.feedUrl(`ada-${calendar}`)]);
    try {
      await body();
    } finally {
      await db.query('DELETE FROM calendar_feeds WHERE user_id = $1 AND calendar_id = $2', [ada, calendar]);
    }
  }
  const sync = async (params: Record<string, unknown> = {}, ...flags: string[]) => {
    const exit = await runRunner(['run', TASK, '--params', JSON.stringify(params), ...flags], env());
    expect(exit.code, exit.stdout).toBe(0);
    return exit;
  };
  /** Every notification, with the event it names (null once that row is gone). */
  async function notifications() {
    const { rows } = await db.query(
      `SELECT n.user_id, n.channel, n.status, n.title, n.body, n.scheduled_for = e.synced_at AS scheduled_at_sync, e.uid, e.recurrence_id
       FROM notifications n LEFT JOIN calendar_events e ON e.id = n.calendar_event_id ORDER BY n.title`,
    );
    return rows as { user_id: string; channel: string; status: string; title: string; body: string; scheduled_at_sync: boolean | null; uid: string | null; recurrence_id: Date | null }[];
  }

  it('announces nothing on the first sync; then each new event once, by its first upcoming occurrence, and not again as the window moves', async () => {
    ics.publish('ada', calendar(keep));
    ics.publish('bob', calendar());
    // Only a week ahead, so that later the window can move over occurrences of a known event.
    const first = await sync({ futureDays: 7 });
    expect(first.result?.summary).toMatchObject({ feeds_synced: 2, events_synced: 1, notifications_queued: 0 });
    expect(await notifications()).toEqual([]);

    // A single event, and a weekly one that began two weeks ago: its next occurrence is tomorrow.
    const lunch = withLines(vevent('lunch', day(3, 11), day(3, 12), 'Lunch with Grace'), 'LOCATION:Café Einstein');
    const yoga = withLines(vevent('yoga', day(-13, 17), day(-13, 18), 'Yoga'), 'RRULE:FREQ=WEEKLY;COUNT=6');
    ics.publish('ada', calendar(keep, lunch, yoga));
    const second = await sync({ futureDays: 7 });
    expect(second.result?.summary).toMatchObject({ feeds_synced: 1, feeds_not_modified: 1, events_synced: 5, notifications_queued: 2 });
    expect(await notifications()).toEqual([
      {
        user_id: ada, channel: 'email', status: 'pending', scheduled_at_sync: true, uid: 'lunch', recurrence_id: null,
        title: 'New calendar event: Lunch with Grace',
        body: `${when(day(3, 11), day(3, 12))}\nWhere: Café Einstein`,
      },
      {
        user_id: ada, channel: 'email', status: 'pending', scheduled_at_sync: true, uid: 'yoga', recurrence_id: day(1, 17),
        title: 'New calendar event: Yoga',
        body: `${when(day(1, 17), day(1, 18))}\nRepeats: yes; the time above is its next occurrence`,
      },
    ]);

    // Unchanged (304): nothing new.
    expect((await sync({ futureDays: 7 })).result?.summary).toMatchObject({ feeds_not_modified: 2, notifications_queued: 0 });
    // Expanded again, a month ahead: yoga's later occurrences are stored now, but yoga is not new.
    await db.query("UPDATE calendar_feeds SET expanded_at = expanded_at - interval '25 hours' WHERE user_id = $1", [ada]);
    const yogaRows = async () => (await events(ada)).filter((e) => e.uid === 'yoga').length;
    expect(await yogaRows()).toBe(3);
    const moved = await sync({ futureDays: 30 });
    expect(moved.result?.summary).toMatchObject({ feeds_synced: 1, notifications_queued: 0 });
    expect(await yogaRows()).toBe(6);
    expect(await notifications()).toHaveLength(2);
  });

  it('announces no new event that is over or cancelled, and none with notifyNewEvents false (nor later: it is stored then)', async () => {
    ics.publish('ada', calendar(keep));
    ics.publish('bob', calendar());
    await sync();
    const past = vevent('past', day(-2, 9), day(-2, 10), 'Already over');
    const cancelled = withLines(vevent('cancelled', day(4, 9), day(4, 10), 'Called off'), 'STATUS:CANCELLED');
    ics.publish('ada', calendar(keep, past, cancelled));
    expect((await sync()).result?.summary).toMatchObject({ feeds_synced: 1, events_synced: 3, notifications_queued: 0 });

    const quiet = vevent('quiet', day(5, 9), day(5, 10), 'Quiet');
    ics.publish('ada', calendar(keep, past, cancelled, quiet));
    expect((await sync({ notifyNewEvents: false })).result?.summary).toMatchObject({ feeds_synced: 1, events_synced: 4, notifications_queued: 0 });
    expect(await notifications()).toEqual([]);

    ics.publish('ada', calendar(keep, past, cancelled, quiet, vevent('loud', day(6, 9), day(6, 10), 'Loud')));
    expect((await sync()).result?.summary).toMatchObject({ notifications_queued: 1 });
    expect((await notifications()).map((n) => n.uid)).toEqual(['loud']);
  });

  it("takes an event in two of the user's calendars for one: a duplicate, not a conflict, announced once (and counted once by a dry run)", async () => {
    await withFeed('work', async () => {
      ics.publish('ada', calendar(keep));
      ics.publish('ada-work', calendar());
      ics.publish('bob', calendar());
      await sync();
      // Invitations that reach both calendars; none overlaps another event.
      const standup = vevent('standup', day(2, 11), day(2, 12), 'Stand-up');
      const review = vevent('review', day(3, 14), day(3, 15), 'Review');
      ics.publish('ada', calendar(keep, standup, review));
      ics.publish('ada-work', calendar(standup, review));
      const dry = await sync({}, '--dry-run');
      expect(dry.result?.summary).toMatchObject({ notifications_queued: 2 });
      expect(dry.result?.message).toBe('dry run: 3 feeds read, nothing stored, 2 new-event notifications would be queued');
      const exit = await sync();
      expect(exit.result?.summary).toMatchObject({ feeds_synced: 2, events_synced: 5, conflicts: 0, duplicates: 2, notifications_queued: 2 });
      expect((await notifications()).map((n) => n.uid)).toEqual(['review', 'standup']);
    });
  });

  it("announces a recurring event once, also when it had no occurrence in the window for a while; one removed from the feed and added back is new again", async () => {
    ics.publish('ada', calendar(keep));
    ics.publish('bob', calendar());
    await sync({ futureDays: 30 });
    // Every 18 days: the day after tomorrow and 18 days later.
    const rare = withLines(vevent('rare', day(2, 11), day(2, 12), 'Rare'), 'RRULE:FREQ=DAILY;INTERVAL=18;COUNT=2');
    ics.publish('ada', calendar(keep, rare));
    expect((await sync({ futureDays: 30 })).result?.summary).toMatchObject({ notifications_queued: 1 });
    await db.query("UPDATE notifications SET status = 'sent', sent_at = now()");

    // A window of one day ahead holds no occurrence of it: its rows go, the feed still holds it.
    await refetch();
    expect((await sync({ futureDays: 1 })).result?.summary).toMatchObject({ feeds_synced: 1, events_synced: 1, events_removed: 2, notifications_queued: 0 });
    expect((await events(ada)).map((e) => e.uid)).toEqual(['keep']);
    // Its occurrences come back into the window: it is not new.
    await refetch();
    expect((await sync({ futureDays: 30 })).result?.summary).toMatchObject({ feeds_synced: 1, events_synced: 3, notifications_queued: 0 });

    // Gone from the feed, then back in it: new again.
    ics.publish('ada', calendar(keep));
    expect((await sync({ futureDays: 30 })).result?.summary).toMatchObject({ events_removed: 2, notifications_queued: 0 });
    ics.publish('ada', calendar(keep, rare));
    expect((await sync({ futureDays: 30 })).result?.summary).toMatchObject({ notifications_queued: 1 });
    expect((await notifications()).map((n) => [n.title, n.status]).sort()).toEqual([
      ['New calendar event: Rare', 'pending'],
      ['New calendar event: Rare', 'sent'],
    ]);
  });

  it('cancels a pending notification whose event leaves the feed before it is sent; a sent one, or one whose series only moved, stays', async () => {
    ics.publish('ada', calendar(keep));
    ics.publish('bob', calendar());
    await sync();
    const weekly = (startHour: number) => withLines(vevent('moves', day(1, startHour), day(1, startHour + 1), 'Moves'), 'RRULE:FREQ=WEEKLY;COUNT=3');
    ics.publish('ada', calendar(keep, vevent('gone', day(3, 9), day(3, 10), 'Gone'), vevent('sent', day(3, 11), day(3, 12), 'Sent'), weekly(15)));
    expect((await sync()).result?.summary).toMatchObject({ notifications_queued: 3 });
    await db.query("UPDATE notifications SET status = 'sent', sent_at = now() WHERE title = 'New calendar event: Sent'");

    // 'gone' and 'sent' leave the feed; the series moves an hour (every occurrence gets a new RECURRENCE-ID).
    ics.publish('ada', calendar(keep, weekly(16)));
    const exit = await sync();
    expect(exit.result?.summary).toMatchObject({ events_removed: 5, events_synced: 4, notifications_queued: 0 });
    expect((await notifications()).map((n) => [n.title, n.status, n.uid])).toEqual([
      ['New calendar event: Gone', 'cancelled', null],
      ['New calendar event: Moves', 'pending', null],
      ['New calendar event: Sent', 'sent', null],
    ]);
  });

  it("cancels no notification whose event only left the window, or left one of the user's calendars but is still in another; cancels it once the event leaves the last of them", async () => {
    await withFeed('work', async () => {
      ics.publish('ada', calendar(keep));
      ics.publish('ada-work', calendar());
      ics.publish('bob', calendar());
      await sync({ futureDays: 30 });
      // A weekly 'later' in the default calendar only; the invitation in both (one feed at a time,
      // default first: its notification names the default calendar's row).
      const later = withLines(vevent('later', day(5, 9), day(5, 10), 'Later'), 'RRULE:FREQ=WEEKLY;COUNT=2');
      const invite = vevent('invite', day(3, 14), day(3, 15), 'Invite');
      ics.publish('ada', calendar(keep, later, invite));
      ics.publish('ada-work', calendar(invite));
      expect((await sync({ futureDays: 30, concurrency: 1 })).result?.summary).toMatchObject({ notifications_queued: 2 });
      expect((await notifications()).map((n) => [n.title, n.uid])).toEqual([
        ['New calendar event: Invite', 'invite'],
        ['New calendar event: Later', 'later'],
      ]);

      // No occurrence of 'later' in a window of four days ahead; the invitation gone from the default calendar only.
      ics.publish('ada', calendar(keep, later));
      await refetch();
      expect((await sync({ futureDays: 4 })).result?.summary).toMatchObject({ feeds_synced: 2, events_removed: 3 });
      expect((await notifications()).map((n) => [n.title, n.status, n.uid])).toEqual([
        ['New calendar event: Invite', 'pending', null],
        ['New calendar event: Later', 'pending', null],
      ]);

      // Both leave the last calendar holding them (the work copy of the invitation goes); the rows
      // their notifications named went before.
      ics.publish('ada', calendar(keep));
      ics.publish('ada-work', calendar());
      expect((await sync({ futureDays: 4 })).result?.summary).toMatchObject({ feeds_synced: 2, events_removed: 1 });
      expect((await notifications()).map((n) => [n.title, n.status])).toEqual([
        ['New calendar event: Invite', 'cancelled'],
        ['New calendar event: Later', 'cancelled'],
      ]);
    });
  });

  it("cancels the notification of an event whose only calendar's feed was removed, whatever rows that left; the event is new again in another calendar", async () => {
    await withFeed('work', async () => {
      ics.publish('ada', calendar(keep));
      ics.publish('ada-work', calendar());
      ics.publish('bob', calendar());
      await sync();
      const shared = vevent('shared', day(3, 14), day(3, 15), 'Shared');
      const workOnly = vevent('work-only', day(4, 14), day(4, 15), 'Work only');
      ics.publish('ada', calendar(keep, shared));
      ics.publish('ada-work', calendar(shared, workOnly));
      expect((await sync({ concurrency: 1 })).result?.summary).toMatchObject({ notifications_queued: 2 });

      // The work calendar removed: its feed goes, and (as the application may do) its events, not its UIDs.
      await db.query("DELETE FROM calendar_feeds WHERE user_id = $1 AND calendar_id = 'work'", [ada]);
      await db.query("DELETE FROM calendar_events WHERE user_id = $1 AND calendar_id = 'work'", [ada]);
      await refetch();
      expect((await sync()).result?.summary).toMatchObject({ feeds: 2, feeds_synced: 1, notifications_queued: 0 });
      expect((await notifications()).map((n) => [n.title, n.status])).toEqual([
        ['New calendar event: Shared', 'pending'],
        ['New calendar event: Work only', 'cancelled'],
      ]);

      ics.publish('ada', calendar(keep, shared, workOnly));
      expect((await sync()).result?.summary).toMatchObject({ notifications_queued: 1 });
      expect((await notifications()).map((n) => [n.title, n.status]).sort()).toEqual([
        ['New calendar event: Shared', 'pending'],
        ['New calendar event: Work only', 'cancelled'],
        ['New calendar event: Work only', 'pending'],
      ]);
    });
  });

  it('queues in the transaction of the sync: a sync rolled back queues nothing, and one retried queues each event once', async () => {
    ics.publish('ada', calendar(keep));
    ics.publish('bob', calendar());
    await sync();
    ics.publish('ada', calendar(keep, vevent('new', day(3, 9), day(3, 10), 'New')));
    // The feed's last update, at the end of its transaction, fails.
    await db.query(`CREATE FUNCTION refuse_synced() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`);
    await db.query("CREATE TRIGGER refuse_synced BEFORE UPDATE ON calendar_feeds FOR EACH ROW WHEN (NEW.last_status = 'synced') EXECUTE FUNCTION refuse_synced()");
    try {
      const failed = await runRunner(['run', TASK], env());
      expect(failed.code, failed.stdout).toBe(1);
      expect(failed.result?.message).toContain('refused by the test');
      expect(await notifications()).toEqual([]);
      expect((await events(ada)).map((e) => e.uid)).toEqual(['keep']);
    } finally {
      await db.query('DROP TRIGGER refuse_synced ON calendar_feeds');
      await db.query('DROP FUNCTION refuse_synced()');
    }
    expect((await sync()).result?.summary).toMatchObject({ feeds_synced: 1, notifications_queued: 1 });
    // The same feed synced whole again (as after a crash between commit and report): nothing new.
    await refetch();
    expect((await sync()).result?.summary).toMatchObject({ feeds_synced: 1, notifications_queued: 0 });
    expect((await notifications()).map((n) => n.uid)).toEqual(['new']);
  });

  it('counts in a dry run what it would queue, and writes nothing', async () => {
    ics.publish('ada', calendar(keep));
    ics.publish('bob', calendar());
    await sync();
    ics.publish('ada', calendar(keep, vevent('new', day(3, 9), day(3, 10), 'New')));
    const dry = await sync({}, '--dry-run');
    expect(dry.result?.summary).toMatchObject({ notifications_queued: 1 });
    expect(dry.result?.message).toBe('dry run: 2 feeds read, nothing stored, 1 new-event notification would be queued');
    expect(await notifications()).toEqual([]);
    expect((await sync()).result?.summary).toMatchObject({ notifications_queued: 1 });
  });
});

/** A fresh database `name` migrated as a runner from before migration `next` left it (not yet `next`). */
async function migratedBefore(next: string, name: string): Promise<string> {
  const migrations = resolve(import.meta.dirname, '../../task-runner/migrations');
  const dir = mkdtempSync(join(tmpdir(), `migrations-before-${next}-`));
  try {
    for (const file of readdirSync(migrations).filter((f) => f < next)) copyFileSync(join(migrations, file), join(dir, file));
    const dbUrl = await freshDatabase(inject('pgUrl'), name);
    const old = await runRunner(['migrate'], { DATABASE_URL: dbUrl, BGTASK_MIGRATIONS_DIR: dir });
    expect(old.code, old.stdout).toBe(0);
    return dbUrl;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
/** Whole seconds `h` hours from now, as a feed gives them. */
const wholeSecondsFromNow = (h: number) => new Date(Math.floor(Date.now() / 1000) * 1000 + h * 3600_000);

describe(`${TASK}: upgrade to migration 0017 (calendar_event_uids)`, () => {
  it('announces none of the events a runner before it stored: the table is filled from them', async () => {
    const upgradeUrl = await migratedBefore('0017', 'tasks_sync_calendar_upgrade');
    const up = testPool(upgradeUrl);
    try {
      const user = (await up.query<{ id: string }>("INSERT INTO users (email) VALUES ('cy@example.org') RETURNING id")).rows[0]!.id;
      await up.query("INSERT INTO calendar_feeds (user_id, url, expanded_at) VALUES ($1, $2, now() - interval '1 hour')", [user, ics.feedUrl('upgrade')]);
      const at = wholeSecondsFromNow;
      await up.query(
        `INSERT INTO calendar_events (user_id, calendar_id, uid, recurrence_id, starts_at, ends_at, rrule) VALUES
         ($1, 'default', 'single', NULL, $2, $3, NULL), ($1, 'default', 'weekly', $4, $4, $5, 'FREQ=WEEKLY;COUNT=2')`,
        [user, at(5), at(6), at(24), at(25)],
      );

      await migrated(upgradeUrl);
      const weekly = withLines(vevent('weekly', at(24), at(25)), 'RRULE:FREQ=WEEKLY;COUNT=2');
      ics.publish('upgrade', calendar(vevent('single', at(5), at(6)), weekly, vevent('fresh', at(48), at(49), 'Fresh')));
      const exit = await runRunner(['run', TASK], { DATABASE_URL: upgradeUrl });
      expect(exit.code, exit.stdout).toBe(0);
      expect(exit.result?.summary).toMatchObject({ feeds_synced: 1, events_synced: 4, notifications_queued: 1 });
      expect((await up.query('SELECT title FROM notifications')).rows).toEqual([{ title: 'New calendar event: Fresh' }]);
    } finally {
      await up.end();
    }
  });
});

describe(`${TASK}: upgrade to migration 0018 (notifications.calendar_event_uid)`, () => {
  it('cancels a notification a runner before it queued once its event is gone, also when the row it named went first', async () => {
    const upgradeUrl = await migratedBefore('0018', 'tasks_sync_calendar_upgrade_0018');
    const up = testPool(upgradeUrl);
    try {
      const user = (await up.query<{ id: string }>("INSERT INTO users (email) VALUES ('dee@example.org') RETURNING id")).rows[0]!.id;
      await up.query("INSERT INTO calendar_feeds (user_id, url, expanded_at) VALUES ($1, $2, now() - interval '1 hour')", [user, ics.feedUrl('upgrade-0018')]);
      const at = wholeSecondsFromNow;
      const { rows } = await up.query<{ id: string }>(
        `INSERT INTO calendar_events (user_id, calendar_id, uid, recurrence_id, starts_at, ends_at, rrule) VALUES
         ($1, 'default', 'weekly', $2, $2, $3, 'FREQ=WEEKLY;COUNT=2'), ($1, 'default', 'weekly', $4, $4, $5, 'FREQ=WEEKLY;COUNT=2') RETURNING id`,
        [user, at(24), at(25), at(24 + 168), at(25 + 168)],
      );
      await up.query("INSERT INTO calendar_event_uids (user_id, calendar_id, uid) VALUES ($1, 'default', 'weekly')", [user]);
      await up.query("INSERT INTO notifications (user_id, calendar_event_id, channel, title) VALUES ($1, $2, 'email', 'New calendar event: Weekly')", [user, rows[0]!.id]);

      await migrated(upgradeUrl);
      const notification = async () => (await up.query('SELECT status, calendar_event_id IS NOT NULL AS linked, calendar_event_uid FROM notifications')).rows;
      expect(await notification()).toEqual([{ status: 'pending', linked: true, calendar_event_uid: 'weekly' }]);
      const sync = async () => {
        const exit = await runRunner(['run', TASK], { DATABASE_URL: upgradeUrl });
        expect(exit.code, exit.stdout).toBe(0);
        return exit;
      };
      // The series moves an hour: every RECURRENCE-ID changes, the row it named goes, the event stays.
      ics.publish('upgrade-0018', calendar(withLines(vevent('weekly', at(25), at(26)), 'RRULE:FREQ=WEEKLY;COUNT=2')));
      expect((await sync()).result?.summary).toMatchObject({ events_removed: 2, notifications_queued: 0 });
      expect(await notification()).toEqual([{ status: 'pending', linked: false, calendar_event_uid: 'weekly' }]);
      // Then it leaves the feed.
      ics.publish('upgrade-0018', calendar());
      await sync();
      expect(await notification()).toEqual([{ status: 'cancelled', linked: false, calendar_event_uid: 'weekly' }]);
    } finally {
      await up.end();
    }
  });
});
