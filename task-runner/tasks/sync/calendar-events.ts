import * as z from 'zod';
import { describeError } from '../../errors.ts';
import { defineTask } from '../../task.ts';
import { countNoun } from '../../count-noun.ts';
import type { ParsedFeed } from './ics-events.ts';
import type { Feed } from './feed-store.ts';

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
    const [{ conditionalGet }, { eventsFromIcs }, { countOverlappingPairs }, { newEventsToAnnounce }, { drainBounded }, { feedStore, knownUids }] =
      await Promise.all([
        import('../../services/http-fetch.ts'),
        import('./ics-events.ts'),
        import('./overlaps.ts'),
        import('./event-notifications.ts'),
        import('../../services/bounded.ts'),
        import('./feed-store.ts'),
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
    const storeFeed = feedStore(ctx.db, ctx.log);
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
        const { removed, queued } = await storeFeed(feed, parsed, skippedNote, fetched, now, announce);
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
