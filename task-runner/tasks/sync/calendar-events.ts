import * as z from 'zod';
import type { Pool, PoolClient } from 'pg';
import { describeError } from '../../errors.ts';
import { defineTask } from '../../task.ts';
import { countNoun } from '../../count-noun.ts';
import type { ParsedFeed } from './ics-events.ts';
import { CALENDAR_UIDS, announcesGoneEventSql } from './calendar-membership.ts';

interface Feed {
  id: string;
  user_id: string;
  calendar_id: string;
  url: string;
  etag: string | null;
  last_modified: string | null;
  timezone: string;
  expanded_at: Date | null;
  expanded_timezone: string | null;
}

const UPSERT = `
  INSERT INTO calendar_events AS e (user_id, calendar_id, uid, recurrence_id, summary, description, location, starts_at, ends_at,
                                    all_day, rrule, status, sequence, etag, synced_at, updated_at)
  SELECT $1, $2, r.*, $14, $15, $15
  FROM unnest($3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[],
              $10::boolean[], $11::text[], $12::text[], $13::int[]) AS r
  ON CONFLICT ON CONSTRAINT calendar_events_identity DO UPDATE SET
    summary = EXCLUDED.summary, description = EXCLUDED.description, location = EXCLUDED.location,
    starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at, all_day = EXCLUDED.all_day, rrule = EXCLUDED.rrule,
    status = EXCLUDED.status, sequence = EXCLUDED.sequence, etag = EXCLUDED.etag, synced_at = EXCLUDED.synced_at,
    updated_at = CASE
      WHEN (e.summary, e.description, e.location, e.starts_at, e.ends_at, e.all_day, e.rrule, e.status, e.sequence)
           IS DISTINCT FROM (EXCLUDED.summary, EXCLUDED.description, EXCLUDED.location, EXCLUDED.starts_at, EXCLUDED.ends_at,
                             EXCLUDED.all_day, EXCLUDED.rrule, EXCLUDED.status, EXCLUDED.sequence)
      THEN EXCLUDED.updated_at ELSE e.updated_at END`;

const BATCH = 2000;

// Rows of the feed's calendar ($1 user, $2 calendar) this sync did not stamp ($3, its time) and
// whose UID it did not skip ($4): gone from the feed, or from the expansion window.
const GONE = 'user_id = $1 AND calendar_id = $2 AND synced_at <> $3 AND uid <> ALL($4::text[])';

// The pending notifications of the user ($1) whose events are in none of their calendars, once
// the feed's calendar holds the feed's UIDs: an event that left its last calendar, or whose
// calendar's feed was removed, went before the mail did. Told by the notification's UID, not the
// row it named: that row may have gone already while the event stayed (its occurrence left the
// window, a series moved in time changed every RECURRENCE-ID, the invitation left this calendar
// but not another), which leaves the notification to go out.
const CANCEL_GONE = `UPDATE notifications n SET status = 'cancelled' WHERE n.user_id = $1 AND n.status = 'pending' AND ${announcesGoneEventSql('n')}`;

// The UIDs of all the user's calendars ($1 user), whether or not an occurrence is in the window:
// an event of a feed whose UID is not among them is new to the user (an invitation in two of
// their calendars is one event, announced once).
const KNOWN_UIDS = `SELECT DISTINCT k.uid FROM ${CALENDAR_UIDS} WHERE k.user_id = $1`;

// The feed's calendar ($1 user, $2 calendar) holds exactly the feed's UIDs ($3) from now ($4) on:
// the new ones added, those gone from the feed forgotten (added back later, an event is new again).
const ADD_FEED_UIDS = `
  INSERT INTO calendar_event_uids (user_id, calendar_id, uid, first_seen_at)
  SELECT $1, $2, f.uid, $4 FROM unnest($3::text[]) AS f(uid)
  ON CONFLICT DO NOTHING`;
const FORGET_GONE_UIDS = `
  DELETE FROM calendar_event_uids k
  WHERE k.user_id = $1 AND k.calendar_id = $2 AND NOT EXISTS (SELECT 1 FROM unnest($3::text[]) AS f(uid) WHERE f.uid = k.uid)`;

// One e-mail notification per new event, naming the stored row of the occurrence it announces
// and the event's UID.
const QUEUE = `
  INSERT INTO notifications (user_id, calendar_event_id, calendar_event_uid, channel, title, body, scheduled_for)
  SELECT $1, e.id, e.uid, 'email', n.title, n.body, $7
  FROM unnest($3::text[], $4::timestamptz[], $5::text[], $6::text[]) AS n(uid, recurrence_id, title, body)
  JOIN calendar_events e ON e.user_id = $1 AND e.calendar_id = $2 AND e.uid = n.uid AND e.recurrence_id IS NOT DISTINCT FROM n.recurrence_id`;

/** The UIDs of all the user's calendars (KNOWN_UIDS). */
async function knownUids(db: Pool | PoolClient, user: string): Promise<Set<string>> {
  const { rows } = await db.query<{ uid: string }>(KNOWN_UIDS, [user]);
  return new Set(rows.map((r) => r.uid));
}

// The user's occurrences in the conflict window ($1 user, $2 now, $3 its end), each event once: the
// same UID at the same time in several of their calendars (an invitation seen in a shared and a
// personal calendar) is a duplicate, not a conflict with itself. `copies` counts its rows.
const WINDOW_OCCURRENCES = `
  SELECT starts_at AS s, max(ends_at) AS e, count(*)::int AS copies FROM calendar_events
  WHERE user_id = $1 AND status <> 'cancelled' AND NOT all_day AND ends_at > starts_at
    AND ends_at > $2 AND starts_at < $3
  GROUP BY uid, starts_at`;

export default defineTask({
  name: 'sync.calendar-events',
  family: 'sync',
  description:
    "Syncs each user's iCalendar feed into calendar_events (conditional GET, recurrences, time zones), queues an e-mail notification for each new event and counts overlapping events (an event in several calendars once)",
  params: z.strictObject({
    concurrency: z.int().min(1).max(32).default(4).describe('feeds fetched at once'),
    pastDays: z.int().min(0).max(3650).default(30).describe('occurrences of recurring events are kept from this many days back'),
    futureDays: z.int().min(1).max(3650).default(365).describe('… up to this many days ahead'),
    conflictWindowDays: z.int().min(1).max(365).default(14).describe('overlapping events are counted from now up to this many days ahead; an event in several of the user\'s calendars counts once (as duplicates)'),
    timeoutSeconds: z.int().min(1).max(600).default(60).describe('time one feed download may take'),
    maxFeedBytes: z.int().min(1024).max(500 * 1024 * 1024).default(50 * 1024 * 1024).describe('larger feeds are refused'),
    maxOccurrences: z.int().min(1).max(1_000_000).default(50_000).describe('occurrences looked at per recurring event at most'),
    expandEveryHours: z
      .int()
      .min(1)
      .max(24 * 365)
      .default(24)
      .describe('an unchanged feed is still fetched and expanded whole this often, so recurring events keep reaching futureDays ahead'),
    notifyNewEvents: z
      .boolean()
      .default(true)
      .describe('queue an e-mail notification (sent by email.send-notifications) for each upcoming event new to a feed synced before'),
  }),
  defaults: {
    schedule: '0 * * * *',
    retry: { maxRetries: 3, delaySeconds: 300, backoff: 'Fixed' },
    timeoutSeconds: 1800,
    softTimeoutSeconds: 1500,
  },
  needs: { postgres: true },
  async run(ctx) {
    const p = ctx.params;
    const [{ conditionalGet }, { eventsFromIcs }, { countOverlappingPairs }, { newEventsToAnnounce, eventNotification }, { drainBounded, serializeByKey }, { withTransaction }] =
      await Promise.all([
        import('../../services/http-fetch.ts'),
        import('./ics-events.ts'),
        import('./overlaps.ts'),
        import('./event-notifications.ts'),
        import('../../services/bounded.ts'),
        import('../../services/postgres.ts'),
      ]);
    const { rows: feeds } = await ctx.db.query<Feed>(
      `SELECT f.id, f.user_id, f.calendar_id, f.url, f.etag, f.last_modified, f.expanded_at, f.expanded_timezone, u.timezone
       FROM calendar_feeds f JOIN users u ON u.id = f.user_id WHERE f.enabled ORDER BY f.user_id, f.calendar_id`,
    );
    for (const key of ['feeds_synced', 'feeds_not_modified', 'feeds_failed', 'events_synced', 'events_removed', 'events_skipped', 'notifications_queued', 'conflicts', 'duplicates']) ctx.count(key, 0);
    ctx.set('feeds', feeds.length);
    const failures: string[] = [];
    /** Feeds synced without some of their events, each with what was skipped. */
    const partial: string[] = [];
    const changedUsers = new Set<string>();
    let queuedTotal = 0;
    // One store of a user's calendars at a time in this process, each waiting for the one before
    // it takes a pool client. Stores of one user wait for each other (the advisory lock below);
    // waiting inside their transactions, `concurrency` of them (up to 32) would each hold one of
    // the pool's 4 clients (services/postgres.ts) doing nothing, and the other feeds' queries would
    // wait for a client until BGTASK_CONNECT_TIMEOUT_SECONDS failed them.
    const oneStorePerUser = serializeByKey();
    // A dry run stores nothing between feeds: per user, the UIDs of the feeds it has read stand in
    // for what a real run would have stored, so an event new in two of a user's calendars is
    // counted once, as a real run queues it once.
    const readInDryRun = new Map<string, Set<string>>();

    const syncFeed = async (feed: Feed) => {
      const label = `user ${feed.user_id} calendar ${feed.calendar_id}`;
      const started = performance.now();
      try {
        // The validators only while the stored expansion still reaches far enough, in the user's zone.
        const fresh =
          feed.expanded_at !== null && feed.expanded_timezone === feed.timezone && ctx.clock.now().getTime() - feed.expanded_at.getTime() < p.expandEveryHours * 3_600_000;
        const fetched = await conditionalGet(feed.url, {
          etag: fresh ? feed.etag : null,
          lastModified: fresh ? feed.last_modified : null,
          timeoutMs: p.timeoutSeconds * 1000,
          maxBytes: p.maxFeedBytes,
          signal: ctx.signal,
          accept: 'text/calendar',
        });
        if (!fetched.modified) {
          if (!ctx.dryRun) {
            // last_error stays: a 304 follows a sync, and what that sync skipped is still in the feed.
            await ctx.db.query("UPDATE calendar_feeds SET last_synced_at = $2, last_status = 'not_modified' WHERE id = $1", [feed.id, ctx.clock.now()]);
          }
          ctx.count('feeds_not_modified');
          ctx.log.info({ user: feed.user_id, calendar: feed.calendar_id }, 'feed not modified');
          return;
        }
        const now = ctx.clock.now();
        const fetchedAt = performance.now();
        const parsed = eventsFromIcs(fetched.body, {
          defaultZone: feed.timezone,
          from: new Date(now.getTime() - p.pastDays * 86_400_000),
          to: new Date(now.getTime() + p.futureDays * 86_400_000),
          maxOccurrences: p.maxOccurrences,
        });
        const { rows, truncated, skipped } = parsed;
        if (truncated > 0) ctx.log.warn({ user: feed.user_id, truncated }, `recurring events stopped after ${p.maxOccurrences} occurrences`);
        const skippedNote = skipped.length > 0 ? `${skipped.length} event${skipped.length === 1 ? '' : 's'} skipped: ${skipped.slice(0, 3).map((e) => e.reason).join('; ')}${skipped.length > 3 ? '; …' : ''}` : null;
        if (skippedNote) {
          ctx.count('events_skipped', skipped.length);
          partial.push(`${label}: ${skippedNote}`);
          ctx.log.warn({ user: feed.user_id, calendar: feed.calendar_id, skipped }, 'events skipped');
        }
        // New events are announced only once the feed's calendar is imported: its first successful
        // sync would announce every event it holds. expanded_at is set by each successful sync and
        // by nothing else, so it tells one committed before (a failed or 304 sync leaves it as it
        // was; last_status would not: a failure after successes overwrites it).
        const announce = p.notifyNewEvents && feed.expanded_at !== null;
        if (ctx.dryRun) {
          ctx.count('events_synced', rows.length);
          tallyQueued(await readFeedInDryRun(feed, parsed, now, announce));
          return;
        }
        const parsedAt = performance.now();
        const { removed, queued } = await oneStorePerUser(feed.user_id, () => storeFeed(feed, parsed, skippedNote, fetched, now, announce));
        ctx.count('feeds_synced');
        ctx.count('events_synced', rows.length);
        ctx.count('events_removed', removed);
        tallyQueued(queued);
        changedUsers.add(feed.user_id);
        const ms = (from: number, to: number) => Math.round(to - from);
        const done = performance.now();
        ctx.log.info(
          { user: feed.user_id, calendar: feed.calendar_id, events: rows.length, removed, notificationsQueued: queued, ms: ms(started, done), fetchMs: ms(started, fetchedAt), parseMs: ms(fetchedAt, parsedAt), storeMs: ms(parsedAt, done) },
          'feed synced',
        );
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        const message = describeError(err);
        failures.push(`${label}: ${message}`);
        ctx.count('feeds_failed');
        ctx.log.warn({ user: feed.user_id, calendar: feed.calendar_id, err }, 'feed sync failed');
        if (!ctx.dryRun) {
          await ctx.db.query("UPDATE calendar_feeds SET last_synced_at = $2, last_status = 'failed', last_error = $3 WHERE id = $1", [feed.id, ctx.clock.now(), message]);
        }
      }
    };

    /** Notifications queued (or, in a dry run, that would be): the summary's count and the message's. */
    const tallyQueued = (n: number) => {
      queuedTotal += n;
      ctx.count('notifications_queued', n);
    };

    /**
     * The notifications a real run would queue for the feed (none without `announce`); its UIDs
     * are known from now on to the dry run's reading of the user's other feeds.
     */
    const readFeedInDryRun = async (feed: Feed, parsed: ParsedFeed, now: Date, announce: boolean) => {
      const stored = announce ? await knownUids(ctx.db, feed.user_id) : new Set<string>();
      const read = readInDryRun.get(feed.user_id) ?? new Set<string>();
      readInDryRun.set(feed.user_id, read);
      const wouldQueue = announce ? newEventsToAnnounce(parsed.rows, new Set([...stored, ...read]), now).length : 0;
      for (const uid of parsed.uids) read.add(uid);
      return wouldQueue;
    };

    /**
     * Upserts the feed's events and removes those gone from it, in one transaction; returns how
     * many went. The stored rows of skipped UIDs stay: skipped, not gone. `note` says what was
     * skipped. The feed's calendar's UIDs become the feed's, and the user's pending notifications
     * of events now in none of their calendars are cancelled. With `announce`, queues a
     * notification for each new event in the same transaction: a sync rolled back queues none,
     * and one retried finds the UIDs stored and queues none again.
     */
    const storeFeed = async (
      feed: Feed,
      { rows, uids, skipped }: ParsedFeed,
      note: string | null,
      fetched: { etag: string | null; lastModified: string | null },
      now: Date,
      announce: boolean,
    ) => {
      const kept = skipped.flatMap((e) => (e.uid === null ? [] : [e.uid]));
      return withTransaction(ctx.db, async (client) => {
        // A store of this user's calendars by another process (a run replacing this one; this
        // run's own stores wait in oneStorePerUser) waits here, then finds the UIDs this one
        // stored: each new event is announced once. An advisory lock: the users row stays free
        // for the application.
        await client.query("SELECT pg_advisory_xact_lock(hashtextextended('sync.calendar-events user ' || $1, 0))", [feed.user_id]);
        const announced = announce ? newEventsToAnnounce(rows, await knownUids(client, feed.user_id), now) : [];
        for (let i = 0; i < rows.length; i += BATCH) {
          const batch = rows.slice(i, i + BATCH);
          await client.query(UPSERT, [
            feed.user_id,
            feed.calendar_id,
            batch.map((r) => r.uid),
            batch.map((r) => r.recurrenceId),
            batch.map((r) => r.summary),
            batch.map((r) => r.description),
            batch.map((r) => r.location),
            batch.map((r) => r.startsAt),
            batch.map((r) => r.endsAt),
            batch.map((r) => r.allDay),
            batch.map((r) => r.rrule),
            batch.map((r) => r.status),
            batch.map((r) => r.sequence),
            fetched.etag,
            now,
          ]);
        }
        const queued = await queueNotifications(client, feed, announced, now);
        // Every row of the feed's window was just stamped with `now`: the others are gone from it.
        const { rowCount } = await client.query(`DELETE FROM calendar_events WHERE ${GONE}`, [feed.user_id, feed.calendar_id, now, kept]);
        await client.query(ADD_FEED_UIDS, [feed.user_id, feed.calendar_id, uids, now]);
        await client.query(FORGET_GONE_UIDS, [feed.user_id, feed.calendar_id, uids]);
        const { rowCount: cancelled } = await client.query(CANCEL_GONE, [feed.user_id]);
        if (cancelled) ctx.log.info({ user: feed.user_id, calendar: feed.calendar_id, cancelled }, "notifications of events gone from the user's calendars cancelled");
        await client.query(
          `UPDATE calendar_feeds SET etag = $2, last_modified = $3, last_synced_at = $4, last_status = 'synced', last_error = $5,
             expanded_at = $4, expanded_timezone = $6 WHERE id = $1`,
          [feed.id, fetched.etag, fetched.lastModified, now, note, feed.timezone],
        );
        return { removed: rowCount ?? 0, queued };
      }, { log: ctx.log });
    };

    /** Queues the notification of each new event in `events` (as stored); returns how many. */
    const queueNotifications = async (client: PoolClient, feed: Feed, events: ReturnType<typeof eventsFromIcs>['rows'], now: Date) => {
      if (events.length === 0) return 0;
      const notices = events.map((e) => eventNotification(e, feed.timezone));
      const { rowCount } = await client.query(QUEUE, [
        feed.user_id,
        feed.calendar_id,
        events.map((e) => e.uid),
        events.map((e) => e.recurrenceId),
        notices.map((n) => n.title),
        notices.map((n) => n.body),
        now,
      ]);
      return rowCount ?? 0;
    };

    const queue = [...feeds];
    await drainBounded(() => queue.shift(), p.concurrency, syncFeed, () => ctx.signal.aborted);
    ctx.signal.throwIfAborted();

    // Overlapping events of the users whose calendars changed, across all their calendars.
    for (const user of changedUsers) {
      const now = ctx.clock.now();
      const { rows } = await ctx.db.query<{ s: Date; e: Date; copies: number }>(WINDOW_OCCURRENCES, [user, now, new Date(now.getTime() + p.conflictWindowDays * 86_400_000)]);
      ctx.count('conflicts', countOverlappingPairs(rows.map((r) => ({ start: r.s.getTime(), end: r.e.getTime() }))));
      ctx.count('duplicates', rows.reduce((n, r) => n + r.copies - 1, 0));
    }

    const skippedPart = partial.length > 0 ? `; ${partial.length} synced without some events (their stored copies kept): ${partial.join('; ')}` : '';
    if (failures.length > 0) throw new Error(`${failures.length} of ${feeds.length} calendar feeds failed to sync: ${failures.join('; ')}${skippedPart}`);
    if (!ctx.dryRun) return `synced ${countNoun(feeds.length, 'calendar feed')}${skippedPart}`;
    const wouldQueue = p.notifyNewEvents ? `, ${countNoun(queuedTotal, 'new-event notification')} would be queued` : '';
    return `dry run: ${countNoun(feeds.length, 'feed')} read, nothing stored${wouldQueue}${skippedPart}`;
  },
});
