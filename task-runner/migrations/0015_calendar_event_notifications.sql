-- Up Migration
-- The calendar event a notification announces: sync.calendar-events queues one for each new event
-- of a feed, naming the occurrence it announces, and cancels it while still pending when the event
-- is gone from the feed. SET NULL, not CASCADE: a notification sent stays when its event goes.
ALTER TABLE notifications ADD COLUMN calendar_event_id bigint REFERENCES calendar_events (id) ON DELETE SET NULL;
-- Every sync deletes the events gone from its feed or its window: the notifications naming them
-- are found through this, not by scanning the table once per deleted event.
CREATE INDEX notifications_calendar_event_id_idx ON notifications (calendar_event_id) WHERE calendar_event_id IS NOT NULL;

-- Down Migration
DROP INDEX notifications_calendar_event_id_idx;
ALTER TABLE notifications DROP COLUMN calendar_event_id;
