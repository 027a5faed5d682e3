-- Up Migration
-- The UIDs each of a user's calendars holds, whether or not the event has an occurrence inside
-- sync.calendar-events' window (calendar_events holds only those, so a recurring event with none
-- there for a while has no rows). An event is new to the user, and announced, only when its UID is
-- in none of their calendars here. Each sync sets its feed's calendar to exactly the feed's UIDs:
-- an event removed from the feed and added back later is new again. Filled from the events stored
-- so far, so an upgrade announces none of them (their first_seen_at is the upgrade's time).
CREATE TABLE calendar_event_uids (
  user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  calendar_id   text NOT NULL,
  uid           text NOT NULL,
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, calendar_id, uid)
);
INSERT INTO calendar_event_uids (user_id, calendar_id, uid) SELECT DISTINCT user_id, calendar_id, uid FROM calendar_events;

-- Down Migration
DROP TABLE calendar_event_uids;
