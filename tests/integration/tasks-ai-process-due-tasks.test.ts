// ai.process-due-tasks as a process against real Postgres and a loopback OpenAI-compatible
// endpoint driven through the official client: results stored, recurring tasks rescheduled in
// their time zone, notifications queued, failures isolated, retries with backoff, an unreachable
// or still-overloaded LLM leaving the work due, and two runners never taking the same task.
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type pg from 'pg';
import { badRequest, completionFor, modelNotFound, rateLimited, serverError, startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.ts';
import type { FakeResponse, RecordedRequest } from '../support/fake-http.ts';
import { freshDatabase, migrated, testPool } from '../support/runner-db.ts';
import { closedPort } from '../support/runner-net.ts';
import { buildRunner, runRunner, startRunner } from '../support/runner-process.ts';

const TASK = 'ai.process-due-tasks';
let url: string;
let db: pg.Pool;
let llm: FakeOpenAI;
let userId: string;

beforeAll(async () => {
  buildRunner();
  url = await migrated(await freshDatabase(inject('pgUrl'), 'tasks_ai_process_due'));
  db = testPool(url);
  userId = (await db.query<{ id: string }>("INSERT INTO users (email, timezone) VALUES ('ada@example.org', 'Europe/Berlin') RETURNING id")).rows[0]!.id;
  llm = await startFakeOpenAI();
});
afterAll(async () => {
  await llm.close();
  await db.end();
});
beforeEach(async () => {
  await db.query('TRUNCATE ai_tasks, ai_task_results, notifications, task_runs');
  llm.requests.length = 0;
  llm.setHandler((req) => completionFor(promptOf(req)));
});

const promptOf = (req: RecordedRequest) => (JSON.parse(req.body) as { messages: { role: string; content: string }[] }).messages[1]!.content;
const answering = (respond: (prompt: string) => FakeResponse) => llm.setHandler((req) => respond(promptOf(req)));

interface NewTask {
  title: string;
  schedule_type?: string;
  schedule_config?: object;
  cron_expression?: string;
  timezone?: string;
  next_run_at?: string; // SQL expression
  status?: string;
}
async function addTask(t: NewTask): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO ai_tasks (user_id, title, description, schedule_type, schedule_config, cron_expression, timezone, next_run_at, status)
     VALUES ($1, $2, 'details', $3, $4, $5, $6, ${t.next_run_at ?? "now() - interval '1 minute'"}, $7) RETURNING id`,
    [userId, t.title, t.schedule_type ?? 'once', JSON.stringify(t.schedule_config ?? {}), t.cron_expression ?? null, t.timezone ?? 'UTC', t.status ?? 'active'],
  );
  return rows[0]!.id;
}
const env = (extra: Record<string, string> = {}) => ({ DATABASE_URL: url, LLM_BASE_URL: llm.baseURL, LLM_API_KEY: 'sk-test', ...extra });
async function taskRow(id: string) {
  const { rows } = await db.query(
    `SELECT status, run_count, last_error, claimed_by, next_run_at, next_run_at <= now() AS due,
            to_char(next_run_at AT TIME ZONE timezone, 'ID HH24:MI DD') AS local
     FROM ai_tasks WHERE id = $1`,
    [id],
  );
  return rows[0] as { status: string; run_count: number; last_error: string | null; claimed_by: string | null; next_run_at: Date | null; due: boolean; local: string | null };
}

describe(TASK, () => {
  it('executes due tasks, stores results, reschedules recurring ones in their time zone and queues notifications', async () => {
    const once = await addTask({ title: 'Remind me to call Bob' });
    const daily = await addTask({ title: 'Daily news digest', schedule_type: 'daily', schedule_config: { time: '08:00' }, timezone: 'America/New_York' });
    const weekly = await addTask({ title: 'Weekly plan', schedule_type: 'weekly', schedule_config: { time: '18:30', weekday: 0 }, timezone: 'Europe/Berlin' });
    const monthly = await addTask({ title: 'Pay rent', schedule_type: 'monthly', schedule_config: { time: '09:15', day: 1 }, timezone: 'Asia/Tokyo' });
    const cron = await addTask({ title: 'Hourly check', schedule_type: 'cron', cron_expression: '5 * * * *', timezone: 'UTC' });
    const future = await addTask({ title: 'Not yet', next_run_at: "now() + interval '1 hour'" });
    const paused = await addTask({ title: 'Paused', status: 'paused' });

    const exit = await runRunner(['run', TASK], env({ BGTASK_RUN_ID: 'ai-1' }));
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ tasks_processed: 5, tasks_succeeded: 5, tasks_failed: 0, tasks_left_due: 0 });
    expect(llm.prompts().sort()).toEqual(['Daily news digest', 'Hourly check', 'Pay rent', 'Remind me to call Bob', 'Weekly plan'].map((t) => `${t}\n\ndetails`));
    expect(llm.requests[0]!.headers.authorization).toBe('Bearer sk-test');

    expect(await taskRow(once)).toMatchObject({ status: 'completed', run_count: 1, next_run_at: null, claimed_by: null });
    const d = await taskRow(daily);
    expect(d).toMatchObject({ status: 'active', run_count: 1, due: false });
    expect(d.local).toMatch(/^\d 08:00 \d\d$/);
    expect(d.next_run_at!.getTime() - Date.now()).toBeLessThanOrEqual(25 * 3600_000);
    expect((await taskRow(weekly)).local).toMatch(/^7 18:30 \d\d$/); // ISO 7: Sunday
    expect((await taskRow(monthly)).local).toMatch(/^\d 09:15 01$/);
    const c = await taskRow(cron);
    expect(c.next_run_at!.getUTCMinutes()).toBe(5);
    expect(c.next_run_at!.getTime() - Date.now()).toBeLessThanOrEqual(3600_000);
    expect(await taskRow(future)).toMatchObject({ status: 'active', run_count: 0 });
    expect(await taskRow(paused)).toMatchObject({ status: 'paused', run_count: 0 });

    const results = await db.query('SELECT ai_task_id, status, result, model, total_tokens, run_id FROM ai_task_results WHERE ai_task_id = $1', [once]);
    expect(results.rows).toEqual([
      { ai_task_id: once, status: 'succeeded', result: 'Done: Remind me to call Bob', model: 'gpt-4o-mini-2024-07-18', total_tokens: 29, run_id: 'ai-1' },
    ]);
    const notes = await db.query("SELECT title, body, channel, status FROM notifications WHERE ai_task_id = $1", [once]);
    expect(notes.rows).toEqual([{ title: 'Remind me to call Bob', body: 'Done: Remind me to call Bob', channel: 'in_app', status: 'pending' }]);
    expect((await db.query('SELECT 1 FROM notifications')).rowCount).toBe(5);
  });

  it('takes at most `limit` tasks per run, oldest due first', async () => {
    for (let i = 1; i <= 5; i++) await addTask({ title: `task ${i}`, next_run_at: `now() - interval '${10 - i} minutes'` });
    const exit = await runRunner(['run', TASK, '--params', '{"limit":2,"concurrency":4}'], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.result?.summary).toMatchObject({ tasks_processed: 2, tasks_succeeded: 2 });
    expect(llm.prompts()).toEqual(['task 1\n\ndetails', 'task 2\n\ndetails']);
  });

  it("marks a task failed when the API refuses it, and still does the others; the run fails naming it", async () => {
    const ok1 = await addTask({ title: 'fine one' });
    const bad = await addTask({ title: 'refused one', schedule_type: 'daily', schedule_config: { time: '07:00' } });
    const ok2 = await addTask({ title: 'fine two' });
    answering((prompt) => (prompt.startsWith('refused one') ? badRequest("Invalid 'messages[1].content': string too long.") : completionFor(prompt)));
    {
      const exit = await runRunner(['run', TASK], env());
      expect(exit.code, exit.stdout).toBe(1);
      expect(exit.result?.summary).toMatchObject({ tasks_processed: 3, tasks_succeeded: 2, tasks_failed: 1 });
      expect(exit.result?.message).toContain(`1 of 3 AI tasks failed: ${bad} (refused one): 400 Invalid 'messages[1].content': string too long.`);
      expect(await taskRow(bad)).toMatchObject({ status: 'failed', claimed_by: null });
      expect((await taskRow(bad)).last_error).toContain('string too long');
      expect((await taskRow(ok1)).status).toBe('completed');
      expect((await taskRow(ok2)).status).toBe('completed');
      // A 400 is not retried: one request for the refused task.
      expect(llm.prompts().filter((p) => p.startsWith('refused one'))).toHaveLength(1);
      const failed = await db.query("SELECT status, error FROM ai_task_results WHERE ai_task_id = $1", [bad]);
      expect(failed.rows).toHaveLength(1);
      expect(failed.rows[0]).toMatchObject({ status: 'failed' });
      expect((await db.query("SELECT title FROM notifications WHERE ai_task_id = $1", [bad])).rows).toEqual([{ title: 'Task failed: refused one' }]);
    }
  });

  it('retries 503 and 429 with backoff inside the run, waiting Retry-After, then succeeds', async () => {
    const id = await addTask({ title: 'flaky' });
    llm.script([serverError(), rateLimited(2)], '/v1/chat/completions');
    const exit = await runRunner(['run', TASK, '--params', '{"maxRetries":3}'], env());
    expect(exit.code, exit.stdout).toBe(0);
    expect((await taskRow(id)).status).toBe('completed');
    const times = llm.requests.map((r) => r.at);
    expect(times).toHaveLength(3);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(1950); // Retry-After: 2
  });

  // The endpoint's trouble, not the task's: a daily task must not end for good over one outage.
  it('once the retries are spent on 5xx, leaves the tasks due (a recurring one keeps its time), exits 1, and the next run does them', async () => {
    const daily = await addTask({ title: 'always overloaded', schedule_type: 'daily', schedule_config: { time: '07:00' } });
    const other = await addTask({ title: 'behind it' });
    const before = (await taskRow(daily)).next_run_at;
    llm.script([serverError(), serverError()], '/v1/chat/completions');
    const exit = await runRunner(['run', TASK, '--params', '{"maxRetries":1,"concurrency":1}'], env());
    expect(exit.code, exit.stdout).toBe(1);
    expect(exit.result?.message).toContain('the LLM endpoint answered HTTP 503; the claimed tasks stay due for the next run');
    expect(exit.result?.summary).toMatchObject({ tasks_failed: 0, tasks_succeeded: 0 });
    expect(llm.requests).toHaveLength(2);
    expect(await taskRow(daily)).toMatchObject({ status: 'active', due: true, run_count: 0, claimed_by: null, next_run_at: before });
    expect((await taskRow(daily)).last_error).toContain('the LLM endpoint answered HTTP 503');
    expect(await taskRow(other)).toMatchObject({ status: 'active', due: true, run_count: 0 });
    expect((await db.query('SELECT 1 FROM ai_task_results')).rowCount).toBe(0);

    const up = await runRunner(['run', TASK], env());
    expect(up.code, up.stdout).toBe(0);
    expect(await taskRow(daily)).toMatchObject({ status: 'active', due: false, run_count: 1, last_error: null });
    expect(await taskRow(other)).toMatchObject({ status: 'completed', run_count: 1 });
  });

  it('leaves tasks due when the model does not exist there (404, as every request would get), exits 1', async () => {
    const daily = await addTask({ title: 'misconfigured', schedule_type: 'daily', schedule_config: { time: '07:00' } });
    const before = (await taskRow(daily)).next_run_at;
    llm.script([modelNotFound('gpt-4o-mni')], '/v1/chat/completions');
    const exit = await runRunner(['run', TASK, '--params', '{"maxRetries":0}'], env());
    expect(exit.code, exit.stdout).toBe(1);
    expect(exit.result?.message).toContain('the LLM endpoint answered HTTP 404');
    expect(await taskRow(daily)).toMatchObject({ status: 'active', due: true, run_count: 0, claimed_by: null, next_run_at: before });
    expect((await db.query('SELECT 1 FROM ai_task_results')).rowCount).toBe(0);
  });

  it('leaves tasks due when the LLM is unreachable, exits 1, and the next run does them', async () => {
    const a = await addTask({ title: 'while down A', schedule_type: 'daily', schedule_config: { time: '06:00' } });
    const b = await addTask({ title: 'while down B' });
    const before = (await taskRow(a)).next_run_at;
    const port = await closedPort();
    const down = await runRunner(['run', TASK, '--params', '{"maxRetries":1}'], env({ LLM_BASE_URL: `http://127.0.0.1:${port}/v1` }));
    expect(down.code, down.stdout).toBe(1);
    expect(down.result?.message).toContain('the LLM endpoint is unreachable');
    expect(down.result?.message).toContain('Connection error');
    expect(down.result?.summary).toMatchObject({ tasks_failed: 0, tasks_left_due: 2 });
    for (const id of [a, b]) expect(await taskRow(id)).toMatchObject({ status: 'active', due: true, run_count: 0, claimed_by: null });
    expect((await taskRow(a)).next_run_at).toEqual(before);
    expect((await taskRow(a)).last_error).toContain('the LLM endpoint is unreachable');
    expect((await db.query('SELECT 1 FROM ai_task_results')).rowCount).toBe(0);

    const up = await runRunner(['run', TASK], env());
    expect(up.code, up.stdout).toBe(0);
    expect(await taskRow(a)).toMatchObject({ status: 'active', due: false, run_count: 1, last_error: null });
    expect(await taskRow(b)).toMatchObject({ status: 'completed', run_count: 1 });
  });

  it('two runners at once never take the same task', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await addTask({ title: `parallel ${i}` }));
    answering((prompt) => ({ ...completionFor(prompt), delayMs: 40 }));
    {
      const [one, two] = await Promise.all([
        runRunner(['run', TASK, '--params', '{"concurrency":3}'], env({ BGTASK_RUN_ID: 'par-1' })),
        runRunner(['run', TASK, '--params', '{"concurrency":3}'], env({ BGTASK_RUN_ID: 'par-2' })),
      ]);
      expect(one.code, one.stdout).toBe(0);
      expect(two.code, two.stdout).toBe(0);
      const prompts = llm.prompts();
      expect(prompts).toHaveLength(40);
      expect(new Set(prompts).size).toBe(40);
      const { rows } = await db.query<{ ai_task_id: string; n: number; runs: string[] }>(
        'SELECT ai_task_id, count(*)::int AS n, array_agg(run_id) AS runs FROM ai_task_results GROUP BY ai_task_id',
      );
      expect(rows).toHaveLength(40);
      expect(rows.every((r) => r.n === 1)).toBe(true);
      const byRun = new Set(rows.flatMap((r) => r.runs));
      expect(byRun).toEqual(new Set(['par-1', 'par-2'])); // both did work
      expect((one.result?.summary?.tasks_succeeded as number) + (two.result?.summary?.tasks_succeeded as number)).toBe(40);
    }
  });

  it('on SIGTERM mid-request, releases its claims (still due) and exits 143', async () => {
    const ids = [await addTask({ title: 'slow 1' }), await addTask({ title: 'slow 2' })];
    answering((prompt) => ({ ...completionFor(prompt), delayMs: 5000 }));
    {
      const runner = startRunner(['run', TASK], env());
      await waitUntil(async () => llm.requests.length === 2);
      runner.child.kill('SIGTERM');
      const exit = await runner.exit;
      expect(exit.code, exit.stdout).toBe(143);
      expect(exit.result?.outcome).toBe('Interrupted');
      for (const id of ids) expect(await taskRow(id)).toMatchObject({ status: 'active', due: true, claimed_by: null, run_count: 0 });
    }
  });

  // The application pauses or cancels a task while its LLM request is in flight: the run must
  // not put it back to active with a new next_run_at.
  it('keeps a task cancelled or paused while its request was in flight: result recorded, the occurrence done, not announced', async () => {
    const cancelled = await addTask({ title: 'cancel me', schedule_type: 'daily', schedule_config: { time: '07:00' } });
    const paused = await addTask({ title: 'pause me', schedule_type: 'daily', schedule_config: { time: '07:00' } });
    const untouched = await addTask({ title: 'leave me', schedule_type: 'daily', schedule_config: { time: '07:00' } });
    const [cancelledAt, pausedAt] = [(await taskRow(cancelled)).next_run_at, (await taskRow(paused)).next_run_at];
    // The paused one's request is refused (the failure path); the others answer, slowly.
    answering((prompt) => ({ ...(prompt.startsWith('pause me') ? badRequest('content policy') : completionFor(prompt)), delayMs: 1500 }));
    const runner = startRunner(['run', TASK], env({ BGTASK_RUN_ID: 'ai-changed' }));
    await waitUntil(async () => llm.requests.length === 3);
    await db.query("UPDATE ai_tasks SET status = 'cancelled' WHERE id = $1", [cancelled]);
    await db.query("UPDATE ai_tasks SET status = 'paused' WHERE id = $1", [paused]);
    const exit = await runner.exit;
    expect(exit.code, exit.stdout).toBe(1); // the refused request is still this run's failure
    // Its occurrence ran: resumed, the task must not run it again.
    expect(await taskRow(cancelled)).toMatchObject({ status: 'cancelled', claimed_by: null, run_count: 1, due: false });
    expect((await taskRow(cancelled)).next_run_at).not.toEqual(cancelledAt);
    expect(await taskRow(paused)).toMatchObject({ status: 'paused', claimed_by: null, run_count: 0, next_run_at: pausedAt });
    expect((await taskRow(paused)).last_error).toContain('content policy');
    expect(await taskRow(untouched)).toMatchObject({ status: 'active', due: false, run_count: 1 });
    const results = await db.query<{ ai_task_id: string; status: string }>('SELECT ai_task_id, status FROM ai_task_results ORDER BY ai_task_id');
    expect(results.rows).toEqual([
      { ai_task_id: cancelled, status: 'succeeded' },
      { ai_task_id: paused, status: 'failed' },
      { ai_task_id: untouched, status: 'succeeded' },
    ]);
    expect((await db.query('SELECT ai_task_id FROM notifications')).rows).toEqual([{ ai_task_id: untouched }]);
    expect(exit.result?.summary).toMatchObject({ tasks_succeeded: 2, tasks_failed: 1, status_changed_while_running: 2 });
  });

  it('on SIGTERM, releases a task paused meanwhile without making it active again', async () => {
    const id = await addTask({ title: 'pause then stop' });
    answering((prompt) => ({ ...completionFor(prompt), delayMs: 5000 }));
    const runner = startRunner(['run', TASK], env());
    await waitUntil(async () => llm.requests.length === 1);
    await db.query("UPDATE ai_tasks SET status = 'paused' WHERE id = $1", [id]);
    runner.child.kill('SIGTERM');
    const exit = await runner.exit;
    expect(exit.code, exit.stdout).toBe(143);
    expect(await taskRow(id)).toMatchObject({ status: 'paused', claimed_by: null, run_count: 0 });
  });

  it('refuses to run without LLM_BASE_URL (exit 2)', async () => {
    const exit = await runRunner(['run', TASK], { DATABASE_URL: url });
    expect(exit.code).toBe(2);
    expect(exit.result?.message).toContain('requires LLM_BASE_URL');
  });
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
