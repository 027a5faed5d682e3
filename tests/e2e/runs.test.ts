// Runs that fail, run out of memory, wait for their family, and a family's limits changed by
// `helm upgrade` — with real pods, through the fixture images whose test task does what its
// params say (tests/fixtures/plugins/operator-test-tasks.mjs, family maintenance).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubectlJson, kubectlRaw, waitFor } from '../support/kube.ts';
import {
  FULLNAME,
  RELEASE,
  applyTask,
  createReleaseNamespace,
  fixtureValues,
  helm,
  installChart,
  mergeValues,
  removeInstall,
  runNow,
  taskStatus,
  waitForOperator,
  waitForOutcome,
} from '../support/e2e-helm.ts';

const FIXTURE = 'maintenance.fixture-behave';
const NEVER = '0 0 1 1 *'; // runs come from run-now and retries only
const values = mergeValues(fixtureValues(), { families: { maintenance: { concurrency: 1 } } });

interface EventItem { reason: string; note?: string; regarding?: { name?: string } }

async function eventsOf(ns: string, name: string): Promise<EventItem[]> {
  const list = await kubectlJson<{ items: EventItem[] }>(['-n', ns, 'get', 'events.v1.events.k8s.io', '--field-selector', `regarding.name=${name}`]);
  return list.items;
}

interface JobItem { metadata: { name: string; creationTimestamp: string; labels: Record<string, string> }; spec: any }

async function jobsOf(ns: string, name: string): Promise<JobItem[]> {
  return (await kubectlJson<{ items: JobItem[] }>(['-n', ns, 'get', 'jobs', '-l', `workers.personal-assistant.io/task-name=${name}`])).items;
}

describe('runs with real pods', () => {
  let ns: string;
  beforeAll(async () => {
    ns = await createReleaseNamespace('e2e-runs');
    await installChart(ns, values);
    await waitForOperator(ns);
  });
  afterAll(async () => {
    if (ns) await removeInstall(ns);
  });

  it('`helm test` fails when its check fails (this release has no database)', async () => {
    const r = await helm(['test', RELEASE, '-n', ns, '--timeout', '2m']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/test-connection.*failed/i);
    const logs = await kubectlRaw(['-n', ns, 'logs', `${FULLNAME}-test-connection`]);
    expect(logs.stdout).toMatch(/requires DATABASE_URL/);
  });

  it('a failing task shows Failed with its message and an Event, and is retried after its delay', async () => {
    await applyTask(ns, 'fails', { task: FIXTURE, schedule: NEVER, params: { outcome: 'fail', note: 'e2e' }, retry: { maxRetries: 1, delaySeconds: 20, backoff: 'Fixed' }, history: { failedRuns: 5 } });
    await runNow(ns, 'fails', 'e2e-1');
    const first = await waitForOutcome(ns, 'fails', 90_000, (s) => s.lastRun?.trigger === 'Manual' && s.failed === 1);
    expect(first.lastRun).toMatchObject({ outcome: 'Failed', attempt: 1 });
    expect(first.lastRun?.message).toMatch(/failing on purpose \(e2e\)/);
    const failedEvent = await waitFor('a RunFailed event', async () => (await eventsOf(ns, 'fails')).find((e) => e.reason === 'RunFailed'), 30_000);
    expect(failedEvent.note).toMatch(/ended Failed/);

    const retry = await waitForOutcome(ns, 'fails', 90_000, (s) => s.lastRun?.trigger === 'Retry' && s.failed === 2);
    expect(retry.lastRun).toMatchObject({ outcome: 'Failed', attempt: 2 });
    expect(retry.consecutiveFailures).toBe(2);
    // The retry's Job was made no sooner than the delay after the first run ended (timestamps in whole seconds).
    const retryJob = (await jobsOf(ns, 'fails')).find((j) => j.metadata.name === retry.lastRun?.runId);
    expect(retryJob).toBeDefined();
    const waited = Date.parse(retryJob!.metadata.creationTimestamp) - Date.parse(first.lastRun!.completionTime!);
    expect(waited).toBeGreaterThanOrEqual(19_000);
    // maxRetries 1: no third attempt, even after another delay.
    await new Promise((r) => setTimeout(r, 22_000));
    expect((await jobsOf(ns, 'fails')).length).toBe(2);
    const after = await taskStatus(ns, 'fails');
    expect([after.failed, after.lastRun?.attempt, after.active ?? []]).toEqual([2, 2, []]);
  });

  it('a run over its memory limit shows OOMKilled', async () => {
    await applyTask(ns, 'oom', {
      task: FIXTURE,
      schedule: NEVER,
      params: { allocateMiB: 512 },
      resources: { requests: { memory: '64Mi' }, limits: { memory: '128Mi' } },
      retry: { maxRetries: 0 },
    });
    await runNow(ns, 'oom', 'e2e-1');
    const s = await waitForOutcome(ns, 'oom', 90_000, (x) => x.failed === 1);
    expect(s.lastRun?.outcome).toBe('OOMKilled');
    expect(s.lastRun?.message).toMatch(/memory limit/);
  });

  it('holds family concurrency with real pods: the second run waits, queued, until the first ends', async () => {
    for (const name of ['slow-a', 'slow-b']) await applyTask(ns, name, { task: FIXTURE, schedule: NEVER, params: { sleepSeconds: 12 } });
    await Promise.all(['slow-a', 'slow-b'].map((name) => runNow(ns, name, 'e2e-1')));
    let maxRunning = 0;
    let sawQueued = false;
    const done = await waitFor('both runs counted', async () => {
      const pods = await kubectlJson<{ items: { status: { phase: string } }[] }>(['-n', ns, 'get', 'pods', '-l', 'workers.personal-assistant.io/family=maintenance']);
      maxRunning = Math.max(maxRunning, pods.items.filter((p) => ['Pending', 'Running'].includes(p.status.phase)).length);
      const [a, b] = await Promise.all([taskStatus(ns, 'slow-a'), taskStatus(ns, 'slow-b')]);
      sawQueued ||= [a, b].some((s) => s.active?.some((r) => r.queued));
      return a.succeeded === 1 && b.succeeded === 1 && !a.active?.length && !b.active?.length ? [a, b] : undefined;
    }, 120_000, 500);
    expect(maxRunning).toBe(1);
    expect(sawQueued).toBe(true);
    const [first, second] = [...done].sort((x, y) => Date.parse(x.lastRun!.startTime) - Date.parse(y.lastRun!.startTime));
    expect(Date.parse(second!.lastRun!.startTime)).toBeGreaterThanOrEqual(Date.parse(first!.lastRun!.completionTime!));
  });

  it('`helm upgrade` with new family limits updates every CronJob of that family, live', async () => {
    await applyTask(ns, 'other-family', { task: 'ai.test-scheduler-connection', schedule: NEVER });
    const operatorPods = async () => (await kubectlJson<{ items: { metadata: { name: string } }[] }>(['-n', ns, 'get', 'pods', '-l', 'app.kubernetes.io/component=operator'])).items.map((p) => p.metadata.name).sort();
    const before = await operatorPods();
    await installChart(ns, mergeValues(values, { families: { maintenance: { resources: { limits: { cpu: '750m', memory: '768Mi' } } } } }));
    const limitsOf = async () => {
      const list = await kubectlJson<{ items: { metadata: { name: string }; spec: any }[] }>(['-n', ns, 'get', 'cronjobs']);
      return Object.fromEntries(list.items.map((c) => [c.metadata.name, c.spec.jobTemplate.spec.template.spec.containers[0].resources.limits]));
    };
    const limits = await waitFor('the maintenance CronJobs updated', async () => {
      const l = await limitsOf();
      return l['fails']?.cpu === '750m' && l['slow-b']?.cpu === '750m' ? l : undefined;
    }, 60_000);
    expect(limits).toEqual({
      fails: { cpu: '750m', memory: '768Mi' },
      oom: { cpu: '750m', memory: '128Mi' }, // its own spec.resources win over the family
      'slow-a': { cpu: '750m', memory: '768Mi' },
      'slow-b': { cpu: '750m', memory: '768Mi' },
      'other-family': { cpu: '500m', memory: '512Mi' },
    });
    // No restart: the operator watches its ConfigMap.
    expect(await operatorPods()).toEqual(before);
    expect((await kubectlRaw(['-n', ns, 'get', 'configmap', `${FULLNAME}-families`, '-o', 'jsonpath={.data.families\\.yaml}'])).stdout).toMatch(/memory: 768Mi/);
  });
});
