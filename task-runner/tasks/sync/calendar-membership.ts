/**
 * Whether a calendar event is in a user's calendars, in SQL: its UID is in calendar_event_uids
 * (migration 0017) for one of their calendars that still has a feed. A calendar whose feed was
 * removed is not the user's any more, whatever rows it left behind. sync.calendar-events asks it
 * to tell new events (in none) and gone ones, whose pending notifications it cancels;
 * email.send-notifications, to send no notification of an event gone since it was queued.
 */

/** The UIDs of the users' calendars, as `k` (k.user_id, k.calendar_id, k.uid). */
export const CALENDAR_UIDS = 'calendar_event_uids k JOIN calendar_feeds f ON f.user_id = k.user_id AND f.calendar_id = k.calendar_id';

/**
 * SQL true when notification `n` (a table alias) announces a calendar event (its UID, migration
 * 0018) that is in none of its user's calendars; false for any other notification.
 */
export function announcesGoneEventSql(n: string): string {
  return `(${n}.calendar_event_uid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${CALENDAR_UIDS} WHERE k.user_id = ${n}.user_id AND k.uid = ${n}.calendar_event_uid))`;
}
