// The task-runner image in the kind cluster, no operator involved: a restricted Job runs
// maintenance.cleanup-old-sessions against in-cluster Postgres and reports into its BackgroundTask
// as a ServiceAccount that may touch that one object only. Then the faults: no rights at all, a
// runner killed mid-batch, Postgres unreachable.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { API_GROUP } from '../../crds/constants.ts';
import { kindNode, nodeShell } from '../support/cluster-host.ts';
import { createNamespace, deleteNamespace, installCrd, kubectl, kubectlJson, waitFor } from '../support/kube.ts';
import {
  createBackgroundTask,
  createServiceAccount,
  databaseEnv,
  deployPostgres,
  getBackgroundTask,
  psql,
  runJob,
  runnerJob,
  startJob,
  type Terminated,
} from '../support/runner-cluster.ts';

const TASK = 'maintenance.cleanup-old-sessions';
let ns: string;

/**
 * What the runner's report does, on the one BackgroundTask `name`: it reads the status
 * subresource, then merge-patches it. (RBAC authorizes a subresource on its own: `get` on
 * `backgroundtasks` does not cover a GET of `backgroundtasks/status`.)
 */
const reportRules = (name: string) => [{ apiGroups: [API_GROUP], resources: ['backgroundtasks/status'], resourceNames: [name], verbs: ['get', 'patch'] }];

/** A BackgroundTask for one test, and a ServiceAccount with the report's rights on it alone. */
async function taskWithRunner(name: string): Promise<string> {
  // Suspended: should an operator watch this namespace, it still never starts a run of its own.
  await createBackgroundTask(ns, name, { task: TASK, schedule: '0 4 * * *', suspend: true });
  await createServiceAccount(ns, `runner-${name}`, reportRules(name));
  return `runner-${name}`;
}

/** `expired` sessions that expired over the past hours and `live` ones valid for a day. */
async function seedSessions(expired: number, live: number): Promise<void> {
  await psql(ns, `
    TRUNCATE user_sessions;
    INSERT INTO user_sessions (user_id, token, expires_at)
    SELECT u.id, 'expired-' || g, now() - interval '1 hour' - g * interval '1 second'
    FROM generate_series(1, ${expired}) g, (SELECT id FROM users LIMIT 1) u;
    INSERT INTO user_sessions (user_id, token, expires_at)
    SELECT u.id, 'live-' || g, now() + interval '1 day'
    FROM generate_series(1, ${live}) g, (SELECT id FROM users LIMIT 1) u;`);
}

async function countSessions(): Promise<{ expired: number; live: number }> {
  const [expired, live] = (await psql(ns, "SELECT count(*) FILTER (WHERE expires_at < now()), count(*) FILTER (WHERE expires_at >= now()) FROM user_sessions")).split('|').map(Number);
  return { expired: expired!, live: live! };
}

const resultOf = (t: Terminated) => JSON.parse(t.message ?? 'null') as Record<string, any>;

async function logsOf(pod: string): Promise<string> {
  return kubectl(['-n', ns, 'logs', pod]);
}

beforeAll(async () => {
  await installCrd();
  ns = await createNamespace('runner-in-cluster');
  // Pod Security admission refuses any pod here that does not meet the restricted profile.
  await kubectl(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted']);
  await deployPostgres(ns);
  const migrate = await runJob(ns, runnerJob(ns, { name: 'migrate', args: ['migrate'], env: databaseEnv() }));
  expect(migrate.exitCode, await logsOf(migrate.podName)).toBe(0);
  await psql(ns, "INSERT INTO users (email) VALUES ('ada@example.org')");
});

afterAll(async () => {
  if (ns) await deleteNamespace(ns);
});

beforeEach(async () => {
  await psql(ns, 'DROP TRIGGER IF EXISTS slow_delete ON user_sessions; TRUNCATE user_sessions, task_runs;');
});

describe('the runner image in a Job', () => {
  it('cleans the expired sessions and reports the run into its BackgroundTask and its termination message', async () => {
    const sa = await taskWithRunner('sessions');
    await seedSessions(1234, 100);
    const job = runnerJob(ns, { name: 'sessions-run-1', args: ['run', TASK], serviceAccount: sa, task: 'sessions', env: databaseEnv() });
    const end = await runJob(ns, job);
    const logs = await logsOf(end.podName);
    expect(end.exitCode, logs).toBe(0);
    expect(end.reason).toBe('Completed');
    expect(await countSessions()).toEqual({ expired: 0, live: 100 });

    const task = await getBackgroundTask(ns, 'sessions');
    expect(task.status.lastRun).toMatchObject({
      runId: 'sessions-run-1',
      trigger: 'Manual',
      attempt: 1,
      outcome: 'Succeeded',
      summary: { sessions_cleaned: 1234, batches: 2 },
    });
    // Written by the runner, on the status subresource, and only lastRun.
    const byRunner = task.metadata.managedFields.filter((f: any) => f.manager === 'bgtask-runner');
    expect(byRunner).toEqual([expect.objectContaining({ operation: 'Update', subresource: 'status' })]);
    expect(Object.keys(byRunner[0].fieldsV1['f:status']).filter((k) => k !== '.')).toEqual(['f:lastRun']);
    // The kubelet's copy of the result is the same JSON.
    expect(resultOf(end)).toEqual(task.status.lastRun);
    expect(await psql(ns, "SELECT outcome FROM task_runs WHERE run_id = 'sessions-run-1'")).toBe('Succeeded');
  });

  it('with a ServiceAccount that has no rights: the real outcome, exit 0, status untouched, the result in the termination message', async () => {
    await createBackgroundTask(ns, 'no-rights', { task: TASK, schedule: '0 4 * * *', suspend: true });
    await createServiceAccount(ns, 'runner-no-rights');
    await seedSessions(50, 5);
    const job = runnerJob(ns, { name: 'no-rights-run-1', args: ['run', TASK], serviceAccount: 'runner-no-rights', task: 'no-rights', env: databaseEnv() });
    const end = await runJob(ns, job);
    const logs = await logsOf(end.podName);
    expect(end.exitCode, logs).toBe(0);
    expect(resultOf(end)).toMatchObject({ runId: 'no-rights-run-1', outcome: 'Succeeded', summary: { sessions_cleaned: 50 } });
    expect(await countSessions()).toEqual({ expired: 0, live: 5 });
    // The report was tried and refused by the apiserver, not skipped.
    expect(logs).toMatch(/status report failed: .*HTTP 403/);
    const task = await getBackgroundTask(ns, 'no-rights');
    expect(task.status?.lastRun).toBeUndefined();
    expect(task.metadata.managedFields.map((f: any) => f.manager)).not.toContain('bgtask-runner');
  });

  it('killed mid-batch (pod deleted): stops at a safe point, exits 143, the termination message says Interrupted', async () => {
    const sa = await taskWithRunner('killed');
    await seedSessions(3000, 0);
    // A real slow batch: each deleted row costs 10 ms, so a batch of 300 takes about 3 s.
    await psql(ns, `
      CREATE OR REPLACE FUNCTION slow_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.01); RETURN OLD; END $$;
      CREATE TRIGGER slow_delete BEFORE DELETE ON user_sessions FOR EACH ROW EXECUTE FUNCTION slow_delete();`);
    const job = runnerJob(ns, { name: 'killed-run-1', args: ['run', TASK, '--params', '{"batchSize":300}'], serviceAccount: sa, task: 'killed', env: databaseEnv() });
    const run = await startJob(ns, job);
    try {
      const pod = await run.podName();
      // Delete the pod while a batch is running in Postgres: the kubelet sends SIGTERM, as on a drain, an eviction or a timeout.
      await waitForActiveBatch();
      await kubectl(['-n', ns, 'delete', 'pod', pod, '--grace-period=30', '--wait=false']);
      const end = await run.terminated();
      expect(end.exitCode).toBe(143);
      const result = resultOf(end);
      expect(result).toMatchObject({ runId: 'killed-run-1', outcome: 'Interrupted', message: 'received SIGTERM: stopped at a safe point' });
      // The batch in flight finished whole; no other started.
      const cleaned = result.summary.sessions_cleaned as number;
      expect(cleaned % 300).toBe(0);
      expect(cleaned).toBeGreaterThanOrEqual(300);
      expect(cleaned).toBeLessThan(3000);
      expect((await countSessions()).expired).toBe(3000 - cleaned);
      // Within its grace period the runner also reported: the status holds the same result.
      expect((await getBackgroundTask(ns, 'killed')).status.lastRun).toEqual(result);
    } finally {
      run.stop();
    }
  });

  it('with Postgres unreachable (a Service with no endpoints): exit 1, the cause in the status message', async () => {
    const sa = await taskWithRunner('no-db');
    await kubectl(['-n', ns, 'create', 'service', 'clusterip', 'postgres-nowhere', '--tcp=5432:5432']);
    const service = await kubectlJson(['-n', ns, 'get', 'service', 'postgres-nowhere']);
    // kube-proxy rejects connections to a Service without endpoints once it has written the rule
    // for it. Before that a connection to the ClusterIP leaves the node, and on these machines
    // something beyond it accepts any TCP connection and closes it ("Connection terminated
    // unexpectedly" instead of ECONNREFUSED: a CI run lost that race).
    const node = await kindNode();
    const rejects = `-d ${service.spec.clusterIP}/32 `;
    await waitFor('kube-proxy rejecting postgres-nowhere', async () => (await nodeShell(node, 'iptables-save -t filter')).split('\n').some((rule) => rule.includes(rejects) && rule.includes('-j REJECT')), 60_000, 250);
    const job = runnerJob(ns, {
      name: 'no-db-run-1',
      args: ['run', TASK],
      serviceAccount: sa,
      task: 'no-db',
      env: [...databaseEnv('postgres-nowhere'), { name: 'BGTASK_CONNECT_TIMEOUT_SECONDS', value: '5' }],
    });
    const end = await runJob(ns, job);
    expect(end.exitCode, await logsOf(end.podName)).toBe(1);
    const lastRun = (await getBackgroundTask(ns, 'no-db')).status.lastRun;
    expect(lastRun).toMatchObject({ runId: 'no-db-run-1', outcome: 'Failed' });
    // kube-proxy rejects connections to a Service without endpoints.
    expect(lastRun.message).toContain(`ECONNREFUSED ${service.spec.clusterIP}:5432`);
    expect(resultOf(end)).toEqual(lastRun);
  });
});

/** Until Postgres is running one of the task's DELETE batches. */
async function waitForActiveBatch(timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const query = `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bgtask ${TASK}' AND state = 'active' AND query LIKE '%DELETE FROM user_sessions%'`;
  while (Number(await psql(ns, query)) === 0) {
    if (Date.now() > deadline) throw new Error(`no DELETE batch of ${TASK} became active within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
