/**
 * Writes a feed's events to Postgres for sync.calendar-events: each feed in one transaction under
 * its user's advisory lock, one store of a user's calendars at a time in this process. Upserts the
 * occurrences, removes those gone, sets the calendar's UIDs, queues the notifications of new events
 * and cancels those of events gone from the user's calendars.
 */
import type { Logger } from 'pino';
import type { Pool, PoolClient } from 'pg';
import { serializeByKey } from '../../services/bounded.ts';
import { withTransaction } from '../../services/postgres.ts';
import { CALENDAR_UIDS, announcesGoneEventSql } from './calendar-membership.ts';
import { eventNotification, newEventsToAnnounce } from './event-notifications.ts';
import type { EventRow, ParsedFeed } from './ics-events.ts';

/** A calendar_feeds row to sync, with its user's time zone. */
export interface Feed {
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
export async function knownUids(db: Pool | PoolClient, user: string): Promise<Set<string>> {
  const { rows } = await db.query<{ uid: string }>(KNOWN_UIDS, [user]);
  return new Set(rows.map((r) => r.uid));
}

/** The validators of the feed's answer, stored with it. */
export interface Fetched {
  etag: string | null;
  lastModified: string | null;
}

/**
 * The store of a run's feeds into `db`: `store(feed, parsed, note, fetched, now, announce)`
 * upserts the feed's events and removes those gone from it, in one transaction; returns how many
 * went. The stored rows of skipped UIDs stay: skipped, not gone. `note` says what was skipped.
 * The feed's calendar's UIDs become the feed's, and the user's pending notifications of events
 * now in none of their calendars are cancelled. With `announce`, queues a notification for each
 * new event in the same transaction: a sync rolled back queues none, and one retried finds the
 * UIDs stored and queues none again.
 */
export function feedStore(db: Pool, log: Logger) {
  // One store of a user's calendars at a time in this process, each waiting for the one before
  // it takes a pool client. Stores of one user wait for each other (the advisory lock below);
  // waiting inside their transactions, `concurrency` of them (up to 32) would each hold one of
  // the pool's 4 clients (services/postgres.ts) doing nothing, and the other feeds' queries would
  // wait for a client until BGTASK_CONNECT_TIMEOUT_SECONDS failed them.
  const oneStorePerUser = serializeByKey();
  return (feed: Feed, parsed: ParsedFeed, note: string | null, fetched: Fetched, now: Date, announce: boolean) =>
    oneStorePerUser(feed.user_id, () => withTransaction(db, (client) => storeFeed(client, log, feed, parsed, note, fetched, now, announce), { log }));
}

/** The transaction of feedStore's `store`, on `client`. */
async function storeFeed(
  client: PoolClient,
  log: Logger,
  feed: Feed,
  { rows, uids, skipped }: ParsedFeed,
  note: string | null,
  fetched: Fetched,
  now: Date,
  announce: boolean,
): Promise<{ removed: number; queued: number }> {
  const kept = skipped.flatMap((e) => (e.uid === null ? [] : [e.uid]));
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
  if (cancelled) log.info({ user: feed.user_id, calendar: feed.calendar_id, cancelled }, "notifications of events gone from the user's calendars cancelled");
  await client.query(
    `UPDATE calendar_feeds SET etag = $2, last_modified = $3, last_synced_at = $4, last_status = 'synced', last_error = $5,
       expanded_at = $4, expanded_timezone = $6 WHERE id = $1`,
    [feed.id, fetched.etag, fetched.lastModified, now, note, feed.timezone],
  );
  return { removed: rowCount ?? 0, queued };
}

/** Queues the notification of each new event in `events` (as stored); returns how many. */
async function queueNotifications(client: PoolClient, feed: Feed, events: EventRow[], now: Date): Promise<number> {
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
}
