-- Up Migration
-- A claim's lease, stored with it: the time after which the run that took it can no longer be
-- alive (its own deadline, the BackgroundTask's timeoutSeconds, plus the pod's time to stop). The
-- run that would take the claim over may have another deadline (another BackgroundTask of the same
-- task, or a timeout changed since), so it cannot compute the lease itself. A claim without one
-- (taken before this migration, or by a runner from before it during an upgrade) keeps the lease
-- it had then: its claimed_at plus the task's default timeout.
ALTER TABLE notifications ADD COLUMN lease_expires_at timestamptz;
ALTER TABLE daily_summary_deliveries ADD COLUMN lease_expires_at timestamptz;

-- Down Migration
ALTER TABLE daily_summary_deliveries DROP COLUMN lease_expires_at;
ALTER TABLE notifications DROP COLUMN lease_expires_at;
