-- Up Migration
-- One row per run of a task that uses Postgres, written by the task-runner when the run ends.
CREATE TABLE task_runs (
  run_id      text PRIMARY KEY,
  task        text NOT NULL,
  family      text NOT NULL,
  trigger     text NOT NULL CHECK (trigger IN ('Schedule', 'Manual', 'Retry')),
  attempt     integer NOT NULL CHECK (attempt >= 1),
  outcome     text NOT NULL CHECK (outcome IN ('Succeeded', 'Failed', 'TimedOut', 'OOMKilled', 'Interrupted', 'InvalidInput')),
  summary     jsonb NOT NULL DEFAULT '{}',
  message     text NOT NULL DEFAULT '',
  error       text,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  CHECK (finished_at >= started_at)
);
CREATE INDEX task_runs_task_started_idx ON task_runs (task, started_at DESC);

-- Down Migration
DROP TABLE task_runs;
