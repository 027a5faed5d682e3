-- Up Migration
-- The iCalendar feed of each user's calendar, polled by sync.calendar-events with the validators
-- of the last answer (ETag, Last-Modified), so an unchanged feed costs a 304 and nothing else.
CREATE TABLE calendar_feeds (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  calendar_id    text NOT NULL DEFAULT 'default',
  -- Private feed URLs carry a secret token: logs name the host only.
  url            text NOT NULL CHECK (url ~ '^https?://'),
  enabled        boolean NOT NULL DEFAULT true,
  etag           text,
  last_modified  text,
  last_synced_at timestamptz,
  last_status    text CHECK (last_status IN ('synced', 'not_modified', 'failed')),
  last_error     text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, calendar_id)
);

-- Down Migration
DROP TABLE calendar_feeds;
