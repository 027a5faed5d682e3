-- Up Migration
-- The UID of the calendar event a notification announces. calendar_event_id (0015) names the row
-- of one occurrence and is set NULL when that row goes, which happens while the event stays (its
-- occurrence left sync.calendar-events' window, a series moved, an invitation left one of two
-- calendars) and when it goes (left the feed, the feed removed, rows deleted by the application).
-- The UID outlives the row: a pending notification is cancelled once its UID is in none of its
-- user's calendars (calendar_event_uids of a calendar that still has a feed), by the sync and by
-- email.send-notifications before it sends. Filled from the rows still there; a notification whose
-- row went before this migration cannot be told from any other and is sent as before.
ALTER TABLE notifications ADD COLUMN calendar_event_uid text;
UPDATE notifications n SET calendar_event_uid = e.uid FROM calendar_events e WHERE e.id = n.calendar_event_id;
-- Each store of a feed looks for its user's pending ones, not through all the user's notifications.
CREATE INDEX notifications_pending_calendar_event_uid_idx ON notifications (user_id, calendar_event_uid)
  WHERE status = 'pending' AND calendar_event_uid IS NOT NULL;

-- Down Migration
DROP INDEX notifications_pending_calendar_event_uid_idx;
ALTER TABLE notifications DROP COLUMN calendar_event_uid;
