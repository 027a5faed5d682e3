-- Up Migration
-- ai.process-due-tasks claims a due task by setting status 'running' with its run id and the
-- time; a claim older than the lease belongs to a run that died and may be taken again.
ALTER TABLE ai_tasks
  ADD COLUMN claimed_by text,
  ADD COLUMN claimed_at timestamptz;
CREATE INDEX ai_tasks_claimed_idx ON ai_tasks (claimed_at) WHERE status = 'running';

-- Every execution of an AI task: what the model answered, or why it failed.
CREATE TABLE ai_task_results (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  ai_task_id    bigint NOT NULL REFERENCES ai_tasks (id) ON DELETE CASCADE,
  user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  run_id        text NOT NULL,
  status        text NOT NULL CHECK (status IN ('succeeded', 'failed')),
  result        text,
  error         text,
  model         text,
  total_tokens  integer,
  scheduled_for timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  CHECK ((status = 'succeeded') = (result IS NOT NULL))
);
CREATE INDEX ai_task_results_user_created_idx ON ai_task_results (user_id, created_at);
CREATE INDEX ai_task_results_task_idx ON ai_task_results (ai_task_id);

-- Down Migration
DROP TABLE ai_task_results;
DROP INDEX ai_tasks_claimed_idx;
ALTER TABLE ai_tasks DROP COLUMN claimed_at, DROP COLUMN claimed_by;
