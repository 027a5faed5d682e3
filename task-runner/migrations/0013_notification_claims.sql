-- Up Migration
-- email.send-notifications claims a due row by setting it 'sending' with claimed_at. A run killed
-- mid-send leaves its claims 'sending': one whose claim is older than the task's hard timeout
-- belongs to a dead run and is claimed again (the Message-ID stays the same, so a duplicate that
-- slips through there is recognisable).
ALTER TABLE notifications ADD COLUMN claimed_at timestamptz;
-- Finding such stale claims without scanning the table (due 'pending' rows use notifications_pending_idx).
CREATE INDEX notifications_sending_claimed_at_idx ON notifications (claimed_at) WHERE status = 'sending';

-- Down Migration
DROP INDEX notifications_sending_claimed_at_idx;
ALTER TABLE notifications DROP COLUMN claimed_at;
