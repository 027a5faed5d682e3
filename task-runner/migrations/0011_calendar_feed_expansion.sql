-- Up Migration
-- When a feed was last expanded whole, and in which zone. Recurring events are stored only up to
-- futureDays ahead of that moment, so a feed that keeps answering 304 must still be fetched and
-- expanded whole now and then (and again when its user's zone changes, for floating and all-day
-- events), or its future occurrences run out.
ALTER TABLE calendar_feeds ADD COLUMN expanded_at timestamptz, ADD COLUMN expanded_timezone text;

-- Down Migration
ALTER TABLE calendar_feeds DROP COLUMN expanded_at, DROP COLUMN expanded_timezone;
