-- Up Migration
-- Events synced from external calendars. An iCalendar event is identified by its UID; an
-- overridden occurrence of a recurring event adds its RECURRENCE-ID (NULL for the master).
CREATE TABLE calendar_events (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  calendar_id   text NOT NULL,
  uid           text NOT NULL,
  recurrence_id timestamptz,
  summary       text NOT NULL DEFAULT '',
  description   text,
  location      text,
  starts_at     timestamptz NOT NULL,
  ends_at       timestamptz,
  all_day       boolean NOT NULL DEFAULT false,
  rrule         text,
  status        text NOT NULL DEFAULT 'confirmed' CHECK (status IN ('tentative', 'confirmed', 'cancelled')),
  sequence      integer NOT NULL DEFAULT 0,
  etag          text,
  synced_at     timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CHECK (ends_at IS NULL OR ends_at >= starts_at),
  CONSTRAINT calendar_events_identity UNIQUE NULLS NOT DISTINCT (user_id, calendar_id, uid, recurrence_id)
);
CREATE INDEX calendar_events_user_starts_idx ON calendar_events (user_id, starts_at);

-- Down Migration
DROP TABLE calendar_events;
