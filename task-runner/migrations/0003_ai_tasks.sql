-- Up Migration
-- Reminders and recurring AI work a user asked for; the scheduler picks the active ones that are due.
CREATE TABLE ai_tasks (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  title           text NOT NULL,
  description     text,
  task_type       text NOT NULL DEFAULT 'reminder',
  schedule_type   text NOT NULL CHECK (schedule_type IN ('once', 'daily', 'weekly', 'monthly', 'cron')),
  -- Shape depends on schedule_type, e.g. {"time": "08:00", "weekday": 1}.
  schedule_config jsonb NOT NULL DEFAULT '{}',
  cron_expression text,
  timezone        text NOT NULL DEFAULT 'UTC',
  next_run_at     timestamptz,
  last_run_at     timestamptz,
  run_count       integer NOT NULL DEFAULT 0,
  status          text NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'paused', 'running', 'completed', 'failed', 'cancelled')),
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CHECK (schedule_type <> 'cron' OR cron_expression IS NOT NULL)
);
CREATE INDEX ai_tasks_due_idx ON ai_tasks (next_run_at) WHERE status = 'active';
CREATE INDEX ai_tasks_user_id_idx ON ai_tasks (user_id);

-- Down Migration
DROP TABLE ai_tasks;
