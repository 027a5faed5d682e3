-- Up Migration
-- 'refused': the mail server refused the summary for good (a 5xx such as 550 no such user). Unlike
-- 'failed' it is not claimed again: every retry would be refused the same way.
ALTER TABLE daily_summary_deliveries DROP CONSTRAINT daily_summary_deliveries_status_check,
  ADD CONSTRAINT daily_summary_deliveries_status_check CHECK (status IN ('sending', 'sent', 'failed', 'refused'));

-- Down Migration
UPDATE daily_summary_deliveries SET status = 'failed' WHERE status = 'refused';
ALTER TABLE daily_summary_deliveries DROP CONSTRAINT daily_summary_deliveries_status_check,
  ADD CONSTRAINT daily_summary_deliveries_status_check CHECK (status IN ('sending', 'sent', 'failed'));
