-- Up Migration
-- Users choose the daily summary e-mail (sent to users.email).
ALTER TABLE users ADD COLUMN daily_summary_opt_in boolean NOT NULL DEFAULT false;

-- One row per user and day: the primary key is what makes the summary go out once per day,
-- however often email.send-daily-summary is retried. 'sending' is a claim; one older than the
-- task's timeout belongs to a dead run and is taken again (the Message-ID stays the same, so a
-- duplicate that slips through there is recognisable).
CREATE TABLE daily_summary_deliveries (
  user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  summary_date date NOT NULL,
  status       text NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
  message_id   text NOT NULL,
  claimed_at   timestamptz NOT NULL,
  sent_at      timestamptz,
  attempts     integer NOT NULL DEFAULT 1,
  last_error   text,
  PRIMARY KEY (user_id, summary_date)
);

-- Down Migration
DROP TABLE daily_summary_deliveries;
ALTER TABLE users DROP COLUMN daily_summary_opt_in;
