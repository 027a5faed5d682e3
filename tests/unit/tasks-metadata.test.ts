// The tasks' metadata (what the operator reads) loads none of the client libraries the tasks use at
// run time: they are imported inside run(). And every schedule and retry delay is the Celery plan's,
// but the daily summary's schedule: the plan's 08:00 is now each user's own, so it runs hourly.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeTask, loadRegistry } from '../../task-runner/registry.ts';

const registry = pathToFileURL(resolve(import.meta.dirname, '../../task-runner/registry.ts')).href;

describe('task metadata', () => {
  it('loads without openai, nodemailer, @notionhq/client, ical.js, tar, luxon or cron-parser', () => {
    const script = `
      import { registerHooks } from 'node:module';
      const seen = new Set();
      registerHooks({ load(url, context, next) { seen.add(url); return next(url, context); } });
      const { loadRegistry, describeTask } = await import(${JSON.stringify(registry)});
      (await loadRegistry({})).tasks.map(describeTask);
      process.stdout.write(JSON.stringify([...seen]));`;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    const loaded = JSON.parse(result.stdout) as string[];
    expect(loaded.some((u) => u.includes('/task-runner/tasks/sync/calendar-events.ts'))).toBe(true); // the probe sees the tasks
    expect(loaded.filter((u) => /\/node_modules\/(openai|nodemailer|@notionhq|ical\.js|tar|luxon|cron-parser|smtp-server)\//.test(u))).toEqual([]);
    expect(loaded.filter((u) => /\/task-runner\/services\//.test(u))).toEqual([]);
  });

  it.each([
    ['ai.process-due-tasks', '*/10 * * * *', 60],
    ['ai.cleanup-old-logs', '0 2 * * *', 60],
    ['email.process-queue', '*/5 * * * *', 300],
    ['email.send-daily-summary', '0 * * * *', 600],
    ['email.send-notifications', '*/5 * * * *', 300],
    ['file.cleanup-temp-files', '0 2 * * *', 600],
    ['file.backup-user-data', '0 1 * * 0', 3600],
    ['sync.calendar-events', '0 * * * *', 300],
    ['sync.notion-pages', '0 */2 * * *', 600],
  ])('%s runs on %s and retries after %i s, 3 times', async (name, schedule, delay) => {
    const task = (await loadRegistry({})).tasks.find((t) => t.name === name)!;
    expect(describeTask(task)).toMatchObject({ schedule, retry: { maxRetries: 3, delaySeconds: delay, backoff: 'Fixed' } });
  });
});
