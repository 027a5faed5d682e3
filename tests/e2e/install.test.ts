// The product as `make up` installs it (charts/bgtask-operator/ci/demo-values.yaml): bundled
// Postgres and Redis, the seed's default tasks, the stock images, in a namespace that enforces the
// restricted Pod Security Standard. Installed once; the scenarios run in order against it, the
// last one uninstalls.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRD_NAME, SCHEMA_HASH_ANNOTATION, crdSchemaHash } from '../../crds/definition.ts';
import { installCrd, kubectl, kubectlJson, kubectlRaw, waitFor } from '../support/kube.ts';
import {
  CHART,
  FULLNAME,
  RELEASE,
  applyTask,
  clearOfSchedule,
  createReleaseNamespace,
  getBgtTable,
  helm,
  installChart,
  leaderPod,
  psql,
  releaseRuns,
  removeInstall,
  runNow,
  taskStatus,
  uninstallChart,
  waitForOperator,
  waitForOutcome,
} from '../support/e2e-helm.ts';
import { startSmtpSink, sunkMail } from '../support/e2e-smtp.ts';

interface ServedCrd {
  metadata: { annotations: Record<string, string> };
  spec: { versions: { additionalPrinterColumns: { name: string }[] }[] };
}

const DEFAULT_TASKS = {
  'ai-cleanup-old-logs': '0 2 * * *',
  'ai-process-due-tasks': '*/10 * * * *',
  'ai-test-scheduler-connection': '*/30 * * * *',
  'email-process-queue': '*/5 * * * *',
  'email-send-daily-summary': '0 * * * *',
  'email-send-notifications': '*/5 * * * *',
  'file-backup-user-data': '0 1 * * 0',
  'file-cleanup-temp-files': '0 2 * * *',
  'maintenance-cleanup-old-sessions': '0 4 * * *',
  'maintenance-optimize-database': '0 3 * * 0',
  'sync-calendar-events': '0 * * * *',
  'sync-notion-pages': '0 */2 * * *',
};
/** Suspended by the demo values (no LLM endpoint, no SMTP server); here e-mail goes to a sink. */
const SUSPENDED = ['ai-process-due-tasks', 'email-send-daily-summary', 'email-send-notifications'];
const DEMO_VALUES = `${CHART}/ci/demo-values.yaml`;
const BUNDLED = `${FULLNAME}-bundled`;

/** Over the demo values: e-mail goes to the test's SMTP sink. */
const VALUES = {
  credentials: { smtp: { existingSecret: 'mail' } },
  runner: { env: { EMAIL_FROM: 'assistant@example.com' } },
  defaultTasks: { tasks: { 'email-process-queue': { suspend: false } } },
};

describe('helm install with bundled Postgres/Redis and the default tasks', () => {
  let ns: string;
  let uninstalled = false;
  beforeAll(async () => {
    ns = await createReleaseNamespace('e2e-install');
    const smtpUrl = await startSmtpSink(ns);
    await kubectl(['-n', ns, 'create', 'secret', 'generic', 'mail', `--from-literal=smtp-url=${smtpUrl}`]);
    await installChart(ns, VALUES, [DEMO_VALUES]);
  });
  afterAll(async () => {
    if (ns && !uninstalled) await removeInstall(ns);
    else if (ns) {
      await releaseRuns(ns);
      await kubectlRaw(['delete', 'namespace', ns, '--wait=false']);
    }
  });

  it('runs in a namespace that enforces the restricted Pod Security Standard: a pod that does not meet it is refused there', async () => {
    const probe = await kubectlRaw(['-n', ns, 'run', 'psa-probe', '--image=bgtask.local/task-runner:dev', '--restart=Never', '--dry-run=server']);
    expect(probe.code).not.toBe(0);
    expect(probe.stderr).toMatch(/violates PodSecurity "restricted:/);
  });

  it('brings the operator up: both replicas Ready, one holding the Lease', async () => {
    const leader = await waitForOperator(ns);
    const pods = await kubectlJson<{ items: { metadata: { name: string }; status: { conditions?: { type: string; status: string }[] } }[] }>([
      '-n', ns, 'get', 'pods', '-l', `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=operator`,
    ]);
    expect(pods.items).toHaveLength(2);
    for (const p of pods.items) expect(p.status.conditions?.find((c) => c.type === 'Ready')?.status, p.metadata.name).toBe('True');
    expect(pods.items.map((p) => p.metadata.name)).toContain(leader);
  });

  it('shows the default tasks in `kubectl get bgt` with their schedules and next runs', async () => {
    const rows = await getBgtTable(ns);
    expect(Object.fromEntries(rows.map((r) => [r.NAME, r.SCHEDULE]))).toEqual(DEFAULT_TASKS);
    for (const row of rows) {
      expect(row.SUSPENDED, row.NAME).toBe(String(SUSPENDED.includes(row.NAME!)));
      expect(row.READY, row.NAME).toBe('True');
      if (row.SUSPENDED === 'false') expect(row['NEXT RUN'], row.NAME).not.toBe('');
    }
    for (const name of Object.keys(DEFAULT_TASKS).filter((n) => !SUSPENDED.includes(n))) {
      const next = (await taskStatus(ns, name)).nextScheduleTime;
      expect(Date.parse(next ?? ''), name).toBeGreaterThan(Date.now());
    }
  });

  it('shows a task whose spec cannot run as not Ready in `kubectl get bgt`, and why in `-o wide`', async () => {
    await applyTask(ns, 'typo', { task: 'maintenance.cleanup-old-sesions', schedule: '0 5 * * *' });
    const row = await waitFor(
      'typo listed as not Ready',
      async () => (await getBgtTable(ns, { wide: true })).find((r) => r.NAME === 'typo' && r.READY === 'False'),
      60_000,
    );
    expect(row).toMatchObject({ REASON: 'InvalidSpec', QUEUED: 'False' });
    expect(row.MESSAGE).toMatch(/^spec\.task: unknown task "maintenance\.cleanup-old-sesions" \(did you mean maintenance\.cleanup-old-sessions\?\); known tasks: /);
    await kubectl(['-n', ns, 'delete', 'bgt', 'typo']);
  });

  it('passes `helm test` (ai.test-scheduler-connection against the bundled databases)', async () => {
    const r = await helm(['test', RELEASE, '-n', ns, '--timeout', '3m']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/TEST SUITE:\s+\S+-test-connection[\s\S]*Phase:\s+Succeeded/);
  });

  it('runs a task now on request: Last Run and Result Succeeded, counters in status', async () => {
    const name = 'ai-test-scheduler-connection';
    // Its */30 schedule must not run it too while this test counts.
    const before = (await clearOfSchedule(ns, name)).succeeded ?? 0;
    await runNow(ns, name, 'e2e-1');
    const s = await waitForOutcome(ns, name, 90_000, (x) => x.lastRun?.trigger === 'Manual' && x.succeeded === before + 1);
    expect(s.lastRun).toMatchObject({ outcome: 'Succeeded', attempt: 1, summary: { postgres_ok: true, redis_ok: true, kubernetes_ok: true } });
    expect(s.consecutiveFailures).toBe(0);
    expect(Date.parse(s.lastSuccessfulTime ?? '')).toBeGreaterThan(Date.now() - 120_000);
    const row = (await getBgtTable(ns)).find((r) => r.NAME === name);
    expect(row?.RESULT).toBe('Succeeded');
    expect(row?.['LAST RUN']).toMatch(/^\d+s$/);
  });

  it('serves Prometheus metrics: the Service reaches the replicas, the leader counts the runs', async () => {
    const viaService = await kubectl(['get', '--raw', `/api/v1/namespaces/${ns}/services/${FULLNAME}-metrics:metrics/proxy/metrics`]);
    expect(viaService).toMatch(/^bgtask_leader [01]$/m);
    const leader = await leaderPod(ns);
    const fromLeader = await kubectl(['get', '--raw', `/api/v1/namespaces/${ns}/pods/${leader}:8080/proxy/metrics`]);
    expect(fromLeader).toMatch(/^bgtask_leader 1$/m);
    expect(fromLeader).toMatch(/^bgtask_runs_total\{[^}]*task="ai.test-scheduler-connection"[^}]*outcome="Succeeded"[^}]*\} [1-9]/m);
    expect(fromLeader).toMatch(/^bgtask_seconds_since_last_success\{[^}]*name="ai-test-scheduler-connection"/m);
    // A task that never succeeded (suspended, never ran) has an age and no time since a success.
    expect(fromLeader).toMatch(/^bgtask_task_age_seconds\{[^}]*name="ai-process-due-tasks"[^}]*\} [1-9]/m);
    expect(fromLeader).not.toMatch(/^bgtask_seconds_since_last_success\{[^}]*name="ai-process-due-tasks"/m);
    expect(fromLeader).toMatch(/^bgtask_consecutive_failures\{[^}]*name="ai-test-scheduler-connection"[^}]*family="ai"\} 0$/m);
    // The dead-man's switch's interval, from the schedules: */30 and a weekly one; none for a suspended task.
    expect(fromLeader).toMatch(/^bgtask_schedule_interval_seconds\{[^}]*name="ai-test-scheduler-connection"[^}]*\} 1800$/m);
    expect(fromLeader).toMatch(/^bgtask_schedule_interval_seconds\{[^}]*name="file-backup-user-data"[^}]*\} 604800$/m);
    expect(fromLeader).not.toMatch(/^bgtask_schedule_interval_seconds\{[^}]*name="ai-process-due-tasks"/m);
    // The chart's CRD is the one the operator was built with, and its RBAC lets it read it.
    expect(fromLeader).toMatch(/^bgtask_crd_schema_state\{state="current"\} 1$/m);
    const queued = [...fromLeader.matchAll(/^bgtask_oldest_queued_run_seconds\{family="([a-z]+)"\} /gm)].map((m) => m[1]).sort();
    expect(queued).toEqual(['ai', 'email', 'file', 'maintenance', 'sync']);
  });

  it('maintenance.cleanup-old-sessions deletes the expired sessions in the in-cluster Postgres, and only those', async () => {
    // Its schedule (04:00) must not run it too, and delete the sessions first, while this test counts.
    const before = (await clearOfSchedule(ns, 'maintenance-cleanup-old-sessions')).succeeded ?? 0;
    await psql(ns, `
      INSERT INTO users (email) VALUES ('e2e@example.com');
      INSERT INTO user_sessions (user_id, token, expires_at)
        SELECT id, 'expired-' || n, now() - interval '1 day' FROM users, generate_series(1, 3) n WHERE email = 'e2e@example.com';
      INSERT INTO user_sessions (user_id, token, expires_at)
        SELECT id, 'valid-' || n, now() + interval '1 day' FROM users, generate_series(1, 2) n WHERE email = 'e2e@example.com';`);
    await runNow(ns, 'maintenance-cleanup-old-sessions', 'e2e-1');
    const s = await waitForOutcome(ns, 'maintenance-cleanup-old-sessions', 90_000, (x) => x.lastRun?.trigger === 'Manual' && x.succeeded === before + 1);
    expect(s.lastRun).toMatchObject({ outcome: 'Succeeded', summary: { sessions_cleaned: 3 } });
    expect(await psql(ns, "SELECT string_agg(token, ',' ORDER BY token) FROM user_sessions")).toBe('valid-1,valid-2');
  });

  it('email.process-queue delivers the queued e-mails to the in-cluster SMTP server, each once', async () => {
    const redis = (args: string, input?: string) =>
      kubectl(['-n', ns, 'exec', '-i', `deploy/${FULLNAME}-redis`, '--', 'sh', '-c', `redis-cli -a "$REDIS_PASSWORD" --no-auth-warning ${args}`], input === undefined ? {} : { input });
    // The task also runs every 5 minutes: a scheduled run may have succeeded (with nothing to
    // send) just before the items are queued, or end after the manual one and become lastRun. So
    // count the successes from here on, and wait for the mail itself.
    const before = (await taskStatus(ns, 'email-process-queue')).succeeded ?? 0;
    for (const n of [1, 2]) {
      const item = { id: `e2e-mail-${n}`, to: `user${n}@example.com`, subject: `e2e message ${n}`, text: `hello ${n}` };
      await redis('-x LPUSH "bgtask:{email}:queue"', JSON.stringify(item));
    }
    await runNow(ns, 'email-process-queue', 'e2e-1');
    const s = await waitForOutcome(ns, 'email-process-queue', 180_000, (x) => (x.succeeded ?? 0) > before);
    expect(s.lastRun?.outcome).toBe('Succeeded');
    // Sent by the manual run, or by a scheduled one around it: either way each exactly once.
    const mail = await waitFor('both e-mails at the SMTP sink', async () => {
      const sunk = await sunkMail(ns);
      return sunk.length >= 2 ? sunk : undefined;
    }, 120_000);
    expect(mail.map((m) => /^Message-ID: (.*)$/im.exec(m.data)?.[1]).sort()).toEqual(['<e2e-mail-1@example.com>', '<e2e-mail-2@example.com>']);
    expect(mail.map((m) => m.to).sort()).toEqual([['<user1@example.com>'], ['<user2@example.com>']]);
    expect(mail.every((m) => m.from === '<assistant@example.com>')).toBe(true);
    expect((await redis('LLEN "bgtask:{email}:queue"')).trim()).toBe('0');
  });

  it('runs a `* * * * *` task of a user on its schedule in a real pod within 90 s, with the release\'s credentials though it names no Secret', async () => {
    // No spec.env: the operator adds the chart's credentials (here the bundled Postgres and Redis) to every run.
    await applyTask(ns, 'every-minute', { task: 'ai.test-scheduler-connection', schedule: '* * * * *' });
    const s = await waitForOutcome(ns, 'every-minute', 90_000, (x) => x.succeeded === 1);
    expect(s.lastRun).toMatchObject({ trigger: 'Schedule', outcome: 'Succeeded', summary: { postgres_ok: true, redis_ok: true } });
    const cronJob = await kubectlJson<{ spec: { jobTemplate: { spec: { template: { spec: { containers: { env: { name: string; valueFrom?: unknown }[]; imagePullPolicy?: string }[] } } } } } }>([
      '-n', ns, 'get', 'cronjob', 'every-minute',
    ]);
    const container = cronJob.spec.jobTemplate.spec.template.spec.containers[0]!;
    expect(container.env.find((e) => e.name === 'DATABASE_URL')?.valueFrom).toEqual({ secretKeyRef: { name: BUNDLED, key: 'database-url', optional: true } });
    expect(container.imagePullPolicy).toBe('IfNotPresent');
    const pods = await kubectlJson<{ items: { metadata: { labels: Record<string, string> }; status: { phase: string } }[] }>([
      '-n', ns, 'get', 'pods', '-l', `batch.kubernetes.io/job-name=${s.lastRun?.runId}`,
    ]);
    const pod = pods.items[0];
    expect(pod?.metadata.labels['workers.personal-assistant.io/task-name']).toBe('every-minute');
    expect(pod?.status.phase).toBe('Succeeded');
    // It stays after uninstall (it is the user's): suspended, it adds no runs meanwhile.
    await kubectl(['-n', ns, 'patch', 'bgt', 'every-minute', '--type=merge', '-p', '{"spec":{"suspend":true}}']);
  });

  it('`helm upgrade` first brings the CRD an older release left behind up to this build\'s (the crd-upgrade hook)', async () => {
    // What an older chart's crds/ leaves (Helm never upgrades them): another schema, here one
    // without the wide Message column, and its hash.
    const columns = async () => (await kubectlJson<ServedCrd>(['get', 'crd', CRD_NAME])).spec.versions[0]!.additionalPrinterColumns.map((c) => c.name);
    const message = (await columns()).indexOf('Message');
    expect(message).toBeGreaterThan(0);
    try {
      await kubectl(['patch', 'crd', CRD_NAME, '--type=json', '-p', JSON.stringify([{ op: 'remove', path: `/spec/versions/0/additionalPrinterColumns/${message}` }])]);
      await kubectl(['annotate', '--overwrite', 'crd', CRD_NAME, `${SCHEMA_HASH_ANNOTATION}=0123456789abcdef`]);
      expect(await columns()).not.toContain('Message');

      await installChart(ns, VALUES, [DEMO_VALUES]); // helm upgrade, the same values
      const crd = await kubectlJson<ServedCrd>(['get', 'crd', CRD_NAME]);
      expect(crd.metadata.annotations[SCHEMA_HASH_ANNOTATION]).toBe(crdSchemaHash());
      expect(await columns()).toContain('Message');
      // The hook and its cluster-wide RBAC are gone once it succeeded.
      expect((await kubectlRaw(['-n', ns, 'get', 'job', `${FULLNAME}-crd-upgrade`])).stderr).toMatch(/NotFound/);
      expect((await kubectlRaw(['get', 'clusterrole', `${ns}-${FULLNAME}-crd-upgrade`])).stderr).toMatch(/NotFound/);
    } finally {
      await installCrd(); // the generated CRD again, whatever the test left
    }
    // The upgrade changed nothing else: the default tasks are all still Ready.
    const rows = await getBgtTable(ns);
    expect(rows.filter((r) => Object.hasOwn(DEFAULT_TASKS, r.NAME ?? '')).map((r) => r.READY)).toEqual(Object.keys(DEFAULT_TASKS).map(() => 'True'));
  });

  it('`helm uninstall` removes everything of the release but the CRD and the users\' tasks', async () => {
    await uninstallChart(ns);
    uninstalled = true;
    const remaining = async () => {
      const out = await kubectl(['-n', ns, 'get', 'all,cm,secret,sa,role,rolebinding,lease,pdb,networkpolicy,bgt,cronjob', '-o', 'name']);
      return out.trim().split('\n').filter((n) => n && !/^(configmap\/kube-root-ca\.crt|serviceaccount\/default)$/.test(n));
    };
    // The garbage collector removes the default tasks' CronJobs, Jobs and pods in the background.
    // The user's own objects: the every-minute task with its runs, the SMTP sink and its Secret.
    const users = /every-minute|smtp-sink|^secret\/mail$/;
    const names = await waitFor('only the user\'s objects to remain', async () => {
      const left = await remaining();
      return left.every((n) => users.test(n)) ? left : undefined;
    }, 60_000).catch(async (err) => {
      throw new Error(`left behind: ${(await remaining()).join(' ')}`, { cause: err });
    });
    expect(names).toContain('backgroundtask.workers.personal-assistant.io/every-minute');
    expect(names).toContain('cronjob.batch/every-minute');
    const cluster = await kubectl(['get', 'clusterrole,clusterrolebinding', '-o', 'name']);
    expect(cluster).not.toContain(`${ns}-${FULLNAME}`);
    expect((await kubectlRaw(['get', 'crd', 'backgroundtasks.workers.personal-assistant.io'])).code).toBe(0);
  });
});
