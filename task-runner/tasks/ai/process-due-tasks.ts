import * as z from 'zod';
import { describeError } from '../../errors.ts';
import { defineTask } from '../../task.ts';
import { countNoun } from '../../count-noun.ts';

interface ClaimedTask {
  id: string;
  user_id: string;
  title: string;
  description: string | null;
  task_type: string;
  schedule_type: 'once' | 'daily' | 'weekly' | 'monthly' | 'cron';
  schedule_config: Record<string, unknown>;
  cron_expression: string | null;
  timezone: string;
  next_run_at: Date | null;
}

// Due active tasks, plus running ones whose claim outlived the lease (their run died). SKIP
// LOCKED makes concurrent runners pass over rows another is claiming right now, and the claim
// (status 'running', claimed_by) commits with this statement: no two runners get one task. The
// batch is chosen once, in a materialized CTE (see maintenance/cleanup-old-sessions.ts for why).
const CLAIM = `
  WITH due AS MATERIALIZED (
    SELECT id FROM ai_tasks
    WHERE (status = 'active' AND next_run_at <= $2)
       OR (status = 'running' AND claimed_at < $2::timestamptz - make_interval(secs => $4))
    ORDER BY next_run_at NULLS FIRST, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED)
  UPDATE ai_tasks t
  SET status = 'running', claimed_by = $1, claimed_at = $2, updated_at = $2
  FROM due WHERE t.id = due.id
  RETURNING t.id, t.user_id, t.title, t.description, t.task_type, t.schedule_type, t.schedule_config,
            t.cron_expression, t.timezone, t.next_run_at`;

// Back to due, untouched otherwise: the next run takes it again. A status the application set
// while the task was claimed (paused, cancelled) is the user's choice and stays.
const RELEASE = `
  UPDATE ai_tasks SET status = CASE WHEN status = 'running' THEN 'active' ELSE status END,
                      claimed_by = NULL, claimed_at = NULL, updated_at = now(), last_error = $3
  WHERE id = $1 AND claimed_by = $2`;

// Our claim, locked until the result is stored: 'running' means the task is still ours to finish;
// any other status the application set while the LLM answered, and the updates below keep it.
// No row: the claim was lost (the lease ran out and another run took the task).
const CLAIM_STATUS = 'SELECT status FROM ai_tasks WHERE id = $1 AND claimed_by = $2 FOR UPDATE';

const SYSTEM_PROMPT =
  'You are a personal assistant carrying out a task the user scheduled. Answer with the result the user should read, concisely.';

export default defineTask({
  name: 'ai.process-due-tasks',
  family: 'ai',
  description: 'Executes due AI tasks through the LLM, stores the results, schedules recurring ones again and queues notifications',
  params: z.strictObject({
    limit: z.int().min(1).max(1000).default(50).describe('tasks per run at most'),
    concurrency: z.int().min(1).max(32).default(4).describe('LLM requests in flight at once'),
    model: z.string().min(1).default('gpt-4o-mini').describe('chat model the endpoint serves'),
    maxRetries: z.int().min(0).max(10).default(3).describe('retries of one request on 429, 5xx or a dropped connection, with backoff'),
    requestTimeoutSeconds: z.int().min(1).max(600).default(120).describe('time one LLM request may take'),
    leaseSeconds: z.int().min(60).max(86_400).default(900).describe('a claim older than this belongs to a dead run and is taken again'),
    notificationChannel: z.enum(['email', 'sms', 'push', 'in_app']).default('in_app').describe('channel of the queued notifications'),
  }),
  defaults: {
    schedule: '*/10 * * * *',
    retry: { maxRetries: 3, delaySeconds: 60, backoff: 'Fixed' },
    timeoutSeconds: 600,
    softTimeoutSeconds: 540,
  },
  needs: { postgres: true },
  async run(ctx) {
    const { limit, concurrency, model, maxRetries, requestTimeoutSeconds, leaseSeconds, notificationChannel } = ctx.params;
    const { LLM_BASE_URL: baseURL, LLM_API_KEY: apiKey } = ctx.requireSettings(['LLM_BASE_URL']);
    const runId = ctx.run.id;

    if (ctx.dryRun) {
      const { rows } = await ctx.db.query<{ n: string }>(
        "SELECT count(*) AS n FROM ai_tasks WHERE status = 'active' AND next_run_at <= $1",
        [ctx.clock.now()],
      );
      const due = Math.min(Number(rows[0]?.n ?? 0), limit);
      ctx.set('tasks_due', due);
      return `dry run: ${countNoun(due, 'due task')} would be processed`;
    }

    const [{ nextRunAfter, ScheduleError }, { openChatClient }, { withTransaction }] = await Promise.all([
      import('./next-run.ts'),
      import('../../services/llm.ts'),
      import('../../services/postgres.ts'),
    ]);
    const llm = await openChatClient({ baseURL, apiKey, model, maxRetries, timeoutMs: requestTimeoutSeconds * 1000 });
    for (const key of ['tasks_processed', 'tasks_succeeded', 'tasks_failed', 'tasks_left_due']) ctx.count(key, 0);

    // The endpoint's problem (llm.endpointProblem), not a task's: the first one seen, and what it is.
    let endpointFailure: unknown;
    let endpointProblem = '';
    const failures: string[] = [];
    let claimedTotal = 0;

    // The user paused or cancelled the task while this run worked on it: the run's result is kept
    // (ai_task_results) and its occurrence is done (next_run_at moves on, or a resumed task would
    // run it again), but the status stays the user's and nothing is announced (no notification).
    const keptStatus = (task: ClaimedTask, status: string) => {
      ctx.count('status_changed_while_running');
      ctx.log.info({ aiTask: task.id, status }, 'task changed while it ran; its status is kept');
    };

    const release = async (task: ClaimedTask, reason: string | null) => {
      await ctx.db.query(RELEASE, [task.id, runId, reason]);
      ctx.count('tasks_left_due');
    };

    const fail = async (task: ClaimedTask, err: unknown) => {
      const message = describeError(err);
      await withTransaction(ctx.db, async (client) => {
        const { rows } = await client.query<{ status: string }>(CLAIM_STATUS, [task.id, runId]);
        const status = rows[0]?.status;
        if (status === undefined) return;
        const stillOurs = status === 'running';
        // The row is locked: the status read is the one this update replaces.
        await client.query(
          `UPDATE ai_tasks SET status = $5, last_error = $3, last_run_at = $4, claimed_by = NULL, claimed_at = NULL, updated_at = $4
           WHERE id = $1 AND claimed_by = $2`,
          [task.id, runId, message, ctx.clock.now(), stillOurs ? 'failed' : status],
        );
        await client.query(
          `INSERT INTO ai_task_results (ai_task_id, user_id, run_id, status, error, model, scheduled_for) VALUES ($1, $2, $3, 'failed', $4, $5, $6)`,
          [task.id, task.user_id, runId, message, model, task.next_run_at],
        );
        if (!stillOurs) return keptStatus(task, status);
        await client.query(
          'INSERT INTO notifications (user_id, ai_task_id, channel, title, body) VALUES ($1, $2, $3, $4, $5)',
          [task.user_id, task.id, notificationChannel, `Task failed: ${task.title}`, message],
        );
      }, { log: ctx.log });
      ctx.count('tasks_failed');
      failures.push(`${task.id} (${task.title}): ${message}`);
      ctx.log.warn({ aiTask: task.id, err }, 'AI task failed');
    };

    const execute = async (task: ClaimedTask) => {
      ctx.count('tasks_processed');
      // An LLM endpoint found failing, or a stop asked for, leaves the rest due for the next run.
      if (endpointFailure !== undefined || ctx.signal.aborted) return release(task, null);
      let next: Date | null;
      try {
        // Before spending an LLM call: a schedule that cannot be computed fails the task now.
        next = nextRunAfter(task, ctx.clock.now());
      } catch (err) {
        if (err instanceof ScheduleError) return fail(task, err);
        throw err;
      }
      const started = performance.now();
      let completion;
      try {
        completion = await llm.complete(
          [
            { role: 'system', content: SYSTEM_PROMPT },
            { role: 'user', content: task.description ? `${task.title}\n\n${task.description}` : task.title },
          ],
          ctx.signal,
        );
      } catch (err) {
        if (ctx.signal.aborted) return release(task, null);
        const problem = llm.endpointProblem(err);
        if (problem !== undefined) {
          if (endpointFailure === undefined) [endpointFailure, endpointProblem] = [err, problem];
          return release(task, `${problem}: ${describeError(err)}`);
        }
        return fail(task, err);
      }
      const now = ctx.clock.now();
      const stored = await withTransaction(ctx.db, async (client) => {
        const { rows } = await client.query<{ status: string }>(CLAIM_STATUS, [task.id, runId]);
        const status = rows[0]?.status;
        // The lease ran out and another run took the task: its result is the one kept. Nothing
        // was written, so ending the transaction here stores nothing.
        if (status === undefined) return false;
        const stillOurs = status === 'running';
        await client.query(
          `UPDATE ai_tasks
           SET status = $3, next_run_at = $4::timestamptz,
               last_run_at = $5, run_count = run_count + 1, last_error = NULL, claimed_by = NULL, claimed_at = NULL, updated_at = $5
           WHERE id = $1 AND claimed_by = $2`,
          [task.id, runId, stillOurs ? (next === null ? 'completed' : 'active') : status, next, now],
        );
        await client.query(
          `INSERT INTO ai_task_results (ai_task_id, user_id, run_id, status, result, model, total_tokens, scheduled_for)
           VALUES ($1, $2, $3, 'succeeded', $4, $5, $6, $7)`,
          [task.id, task.user_id, runId, completion.text, completion.model, completion.totalTokens ?? null, task.next_run_at],
        );
        if (!stillOurs) {
          keptStatus(task, status);
          return true;
        }
        await client.query('INSERT INTO notifications (user_id, ai_task_id, channel, title, body) VALUES ($1, $2, $3, $4, $5)', [
          task.user_id,
          task.id,
          notificationChannel,
          task.title,
          completion.text,
        ]);
        return true;
      }, { log: ctx.log });
      if (!stored) {
        ctx.log.warn({ aiTask: task.id }, 'claim lost before the result was stored; result dropped');
        ctx.count('claims_lost');
        return;
      }
      ctx.count('tasks_succeeded');
      ctx.log.info({ aiTask: task.id, ms: Math.round(performance.now() - started), next: next?.toISOString() ?? null }, 'AI task done');
    };

    // Claimed a few at a time (as many as run at once), so a claim is held only while it is worked on.
    while (claimedTotal < limit && endpointFailure === undefined) {
      ctx.signal.throwIfAborted();
      const { rows } = await ctx.db.query<ClaimedTask>(CLAIM, [runId, ctx.clock.now(), Math.min(concurrency, limit - claimedTotal), leaseSeconds]);
      if (rows.length === 0) break;
      claimedTotal += rows.length;
      const results = await Promise.allSettled(rows.map((task) => execute(task)));
      const broken = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (broken) {
        // Storing a result failed (Postgres): whatever is still claimed is released for the next run.
        const released = await Promise.allSettled(rows.map((task) => ctx.db.query(RELEASE, [task.id, runId, null])));
        const unreleased = released.filter((r) => r.status === 'rejected').length;
        if (unreleased > 0) ctx.log.error({ unreleased }, 'claims could not be released; they return after the lease');
        throw new Error('storing an AI task result failed', { cause: broken.reason });
      }
    }
    ctx.signal.throwIfAborted();
    if (endpointFailure !== undefined) {
      throw new Error(`${endpointProblem}; the claimed tasks stay due for the next run`, { cause: endpointFailure });
    }
    if (failures.length > 0) {
      throw new Error(`${failures.length} of ${claimedTotal} AI tasks failed: ${failures.join('; ')}`);
    }
    return claimedTotal === 0 ? 'no AI task was due' : `processed ${claimedTotal} AI tasks`;
  },
});
