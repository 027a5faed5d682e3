// The runner's command line as a process: listing, describing, refusing bad input with exit 2,
// the result on the last log line and in the termination message, and no API contacted outside
// a cluster. No Postgres or Redis needed.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastRunSchema } from '../../crds/schema.ts';
import { closedPort, connectionCounter } from '../support/runner-net.ts';
import { builtinTasks } from '../../task-runner/tasks/index.ts';
import { buildRunner, runRunner } from '../support/runner-process.ts';

const BUILT_INS = builtinTasks.map((t) => t.name).sort((a, b) => a.localeCompare(b));
const INSTANT = { TASK_PLUGINS: 'tests/fixtures/plugins/instant.mjs' };
const dir = mkdtempSync(join(tmpdir(), 'runner-cli-'));

beforeAll(() => buildRunner());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('plugin tasks', () => {
  it("read their own variables (ctx.variable, process.env) and the runner's settings (ctx.env)", async () => {
    const plugin = { TASK_PLUGINS: 'tests/fixtures/plugins/reads-env.mjs' };
    const set = await runRunner(['run', 'sync.fixture-reads-env'], { ...plugin, FIXTURE_GREETING: 'hello', BGTASK_FILE_ROOTS: '/a:/b' });
    expect(set.code, set.stdout).toBe(0);
    expect(set.result?.summary).toEqual({ greeting: 'hello', greeting_from_process: 'hello', file_roots: 2 });
    const unset = await runRunner(['run', 'sync.fixture-reads-env'], { ...plugin, FIXTURE_GREETING: '' });
    expect(unset.result?.summary).toMatchObject({ greeting: '(unset)', file_roots: 0 });
  });
});

describe('list and describe', () => {
  it('lists the built-in tasks with their schedules', async () => {
    const exit = await runRunner(['list']);
    expect(exit.code).toBe(0);
    expect(exit.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0])).toEqual(BUILT_INS);
    expect(exit.stdout).toMatch(/maintenance\.optimize-database\s+0 3 \* \* 0/);
  });

  it('lists as JSON, plugins included', async () => {
    const exit = await runRunner(['list', '--json'], INSTANT);
    expect(exit.code).toBe(0);
    const tasks = JSON.parse(exit.stdout) as { name: string; params: { type: string } }[];
    expect(tasks.map((t) => t.name)).toEqual([...BUILT_INS, 'sync.fixture-instant'].sort((a, b) => a.localeCompare(b)));
    expect(tasks.every((t) => t.params.type === 'object')).toBe(true);
  });

  it('describes a task: defaults, needs and params JSON Schema', async () => {
    const exit = await runRunner(['describe', 'maintenance.cleanup-old-sessions']);
    expect(exit.code).toBe(0);
    expect(JSON.parse(exit.stdout)).toMatchObject({
      name: 'maintenance.cleanup-old-sessions',
      family: 'maintenance',
      schedule: '0 4 * * *',
      retry: { maxRetries: 3, delaySeconds: 600 },
      needs: { postgres: true, redis: false },
      params: { properties: { batchSize: { type: 'integer', default: 1000 }, maxBatches: { type: 'integer' } } },
    });
  });

  it('exits 2 for an unknown task, naming the known ones', async () => {
    const exit = await runRunner(['describe', 'maintenance.defrag']);
    expect(exit.code).toBe(2);
    expect(exit.stderr).toContain(`unknown task "maintenance.defrag"; known tasks: ${BUILT_INS.join(', ')}`);
  });
});

describe('run: invalid input exits 2, is reported, and touches nothing', () => {
  it('an unknown task', async () => {
    const exit = await runRunner(['run', 'email.send-everything']);
    expect(exit.code).toBe(2);
    expect(exit.result).toMatchObject({ outcome: 'InvalidInput', message: `unknown task "email.send-everything"; known tasks: ${BUILT_INS.join(', ')}` });
  });

  it('params failing the schema: field path and reason', async () => {
    const exit = await runRunner(['run', 'maintenance.cleanup-old-sessions', '--params', '{"batchSize":-5,"maxBatchez":2}'], {
      DATABASE_URL: 'postgres://u:p@127.0.0.1:1/none',
    });
    expect(exit.code).toBe(2);
    expect(exit.result?.outcome).toBe('InvalidInput');
    expect(exit.result?.message).toMatch(/batchSize: Too small: expected number to be >=1/);
    expect(exit.result?.message).toMatch(/Unrecognized key: "maxBatchez"; did you mean maxBatches\?/);
  });

  it('params that are not JSON', async () => {
    const exit = await runRunner(['run', 'sync.fixture-instant', '--params', "{note:'x'}"], INSTANT);
    expect(exit.code).toBe(2);
    expect(exit.result?.message).toMatch(/invalid params for sync.fixture-instant: not valid JSON/);
  });

  it('an invalid configuration', async () => {
    const exit = await runRunner(['run', 'sync.fixture-instant'], { ...INSTANT, REDIS_URL: 'http://cache:6379', BGTASK_ATTEMPT: 'two' });
    expect(exit.code).toBe(2);
    expect(exit.result?.message).toMatch(/^invalid configuration: REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL; BGTASK_ATTEMPT: /);
  });

  it("a malformed task setting, whichever task runs: one line naming it, never its value", async () => {
    const exit = await runRunner(['run', 'sync.fixture-instant'], { ...INSTANT, SMTP_URL: 'http://mailer:hunter2@smtp.example.com', BGTASK_FILE_ROOTS: '/data:relative' });
    expect(exit.code).toBe(2);
    expect(exit.result?.message).toBe('invalid configuration: SMTP_URL: must be an smtp:// or smtps:// URL; BGTASK_FILE_ROOTS.1: every path must be absolute');
    expect(exit.stdout + exit.stderr).not.toContain('hunter2');
  });

  it('an invalid configuration still reports under the run identity that is valid', async () => {
    const exit = await runRunner(['run', 'sync.fixture-instant'], { ...INSTANT, LOG_LEVEL: 'chatty', BGTASK_RUN_ID: 'id-7', BGTASK_TRIGGER: 'Retry', BGTASK_ATTEMPT: '3' });
    expect(exit.code).toBe(2);
    expect(exit.result).toMatchObject({ runId: 'id-7', trigger: 'Retry', attempt: 3, outcome: 'InvalidInput' });
    expect(exit.lines.every((l) => l.runId === 'id-7')).toBe(true);
  });

  it('a service the task needs that is not configured', async () => {
    const exit = await runRunner(['run', 'maintenance.optimize-database']);
    expect(exit.code).toBe(2);
    expect(exit.result?.message).toBe('invalid configuration: task maintenance.optimize-database requires DATABASE_URL (needs.postgres), not set');
  });

  it('a broken plugin', async () => {
    const exit = await runRunner(['run', 'sync.fixture-instant'], { TASK_PLUGINS: 'tests/fixtures/plugins/missing.mjs' });
    expect(exit.code).toBe(2);
    expect(exit.result?.message).toMatch(/task plugin tests\/fixtures\/plugins\/missing.mjs could not be loaded/);
  });

  it('a task setting a task requires, not set', async () => {
    const exit = await runRunner(['run', 'file.backup-user-data', '--dry-run'], { DATABASE_URL: `postgres://u:p@127.0.0.1:${await closedPort()}/db` });
    expect(exit.code).toBe(2);
    expect(exit.result?.message).toBe('invalid configuration: file.backup-user-data requires BGTASK_BACKUP_DIR, not set');
  });

  it('a usage error', async () => {
    expect((await runRunner(['run'])).code).toBe(2);
    expect((await runRunner(['frobnicate'])).code).toBe(2);
    expect((await runRunner(['--help'])).code).toBe(0);
  });
});

describe('run: the result', () => {
  it('is the last log line; every line names task, family and run id', async () => {
    const exit = await runRunner(['run', 'sync.fixture-instant', '--params', '{"note":"hello"}'], {
      ...INSTANT,
      BGTASK_RUN_ID: 'instant-29123456',
      BGTASK_TRIGGER: 'Retry',
      BGTASK_ATTEMPT: '2',
    });
    expect(exit.code).toBe(0);
    expect(exit.stdout.trim().split('\n')).toHaveLength(exit.lines.length);
    for (const line of exit.lines) expect(line).toMatchObject({ task: 'sync.fixture-instant', family: 'sync', runId: 'instant-29123456' });
    expect(exit.lines.at(-1)?.msg).toBe('run finished');
    expect(exit.result).toMatchObject({
      runId: 'instant-29123456',
      trigger: 'Retry',
      attempt: 2,
      outcome: 'Succeeded',
      summary: { note: 'hello' },
      message: 'returned at once',
    });
    expect(lastRunSchema.parse(exit.result)).toEqual(exit.result);
  });

  it('is written to the termination-message file, as one line', async () => {
    const file = join(dir, 'termination-log');
    const exit = await runRunner(['run', 'sync.fixture-instant'], { ...INSTANT, BGTASK_TERMINATION_LOG: file });
    expect(exit.code).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(JSON.stringify(exit.result));
  });

  it('is written to the termination-message file for invalid input too', async () => {
    const file = join(dir, 'termination-log-invalid');
    const exit = await runRunner(['run', 'no.such-task'], { BGTASK_TERMINATION_LOG: file });
    expect(exit.code).toBe(2);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ outcome: 'InvalidInput' });
  });

  it('contacts no Kubernetes API outside a cluster (no service account, no override)', async () => {
    const apiserver = await connectionCounter();
    try {
      const exit = await runRunner(['run', 'sync.fixture-instant'], {
        ...INSTANT,
        KUBERNETES_SERVICE_HOST: '127.0.0.1',
        KUBERNETES_SERVICE_PORT: String(apiserver.port),
        BGTASK_NAME: 'instant',
        BGTASK_NAMESPACE: 'default',
      });
      expect(exit.code).toBe(0);
      expect(exit.result?.outcome).toBe('Succeeded');
      expect(apiserver.connections()).toBe(0);
    } finally {
      await apiserver.close();
    }
  });

  it('keeps the task outcome when the status report fails, with the result still in the termination message', async () => {
    const token = join(dir, 'token');
    writeFileSync(token, 'not-a-real-token');
    const file = join(dir, 'termination-log-unreported');
    const port = await closedPort();
    const exit = await runRunner(['run', 'sync.fixture-instant'], {
      ...INSTANT,
      BGTASK_KUBE_API: `https://127.0.0.1:${port}`,
      BGTASK_KUBE_TOKEN_FILE: token,
      BGTASK_NAME: 'instant',
      BGTASK_NAMESPACE: 'default',
      BGTASK_TERMINATION_LOG: file,
    });
    expect(exit.code).toBe(0);
    const failure = exit.lines.find((l) => l.level === 'error');
    expect(failure?.msg).toMatch(new RegExp(`^status report failed: GET /apis/workers.personal-assistant.io/v1alpha1/namespaces/default/backgroundtasks/instant/status to 127.0.0.1:${port} failed: connect ECONNREFUSED`));
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ outcome: 'Succeeded' });
    expect(exit.result?.outcome).toBe('Succeeded');
  });
});
