import type { Pool } from 'pg';
import type { LastRun } from '../crds/schema.ts';

/**
 * Records a finished run in task_runs. Keyed by run id, so a pod that runs again for the
 * same run rewrites its row instead of adding one.
 */
export async function recordRun(pool: Pool, task: { name: string; family: string }, run: LastRun, error: string | null): Promise<void> {
  await pool.query(
    `INSERT INTO task_runs (run_id, task, family, trigger, attempt, outcome, summary, message, error, started_at, finished_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (run_id) DO UPDATE SET
       task = EXCLUDED.task, family = EXCLUDED.family, trigger = EXCLUDED.trigger, attempt = EXCLUDED.attempt,
       outcome = EXCLUDED.outcome, summary = EXCLUDED.summary, message = EXCLUDED.message, error = EXCLUDED.error,
       started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at`,
    [run.runId, task.name, task.family, run.trigger, run.attempt, run.outcome, JSON.stringify(run.summary), run.message, error, run.startTime, run.completionTime],
  );
}
