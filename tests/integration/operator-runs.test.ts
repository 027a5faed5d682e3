// Real runs in the kind cluster, started by the operator in this process: run-now, a failing run
// retried after its delay, a retry cancelled by deleting its Job, invalid input never retried, a run over its memory limit, a run over
// its timeout, and what the chart's admission policy lets a run write of its task's status. The runner image runs the test plugin task (tests/fixtures/plugins) or a built-in.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createNamespace, describeEvents, kubectl, kubectlJson, kubectlRaw, waitFor } from '../support/kube.ts';
import { writeTokenKubeconfig } from '../support/service-account-kubeconfig.ts';
import { prepareNamespace, reportedByRunner, RUNNER_SA, startOperator, tearDown, type RunningOperator } from './operator-harness.ts';

let ns: string;
let operator: RunningOperator | undefined;

beforeAll(async () => {
  ns = await createNamespace('op-runs');
  await prepareNamespace(ns);
  // Room for every test's runs at once; admission has its own test file.
  operator = await startOperator({ kubeconfig: inject('kubeconfig'), namespace: ns, familiesYaml: 'maintenance: { concurrency: 4 }' });
});

afterAll(async () => {
  await tearDown(ns, operator);
});

async function createTask(name: string, spec: Record<string, unknown>, annotations: Record<string, string> = {}): Promise<void> {
  const manifest = { apiVersion: 'workers.personal-assistant.io/v1alpha1', kind: 'BackgroundTask', metadata: { name, namespace: ns, annotations }, spec: { schedule: '0 0 1 1 *', ...spec } };
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
}

async function runNow(name: string, token: string, params?: Record<string, unknown>): Promise<void> {
  const annotations = [`workers.personal-assistant.io/run-now=${token}`];
  if (params) annotations.push(`workers.personal-assistant.io/run-now-params=${JSON.stringify(params)}`);
  await kubectl(['-n', ns, 'annotate', '--overwrite', 'backgroundtask', name, ...annotations]);
}

async function taskObject(name: string): Promise<any> {
  return kubectlJson(['-n', ns, 'get', 'backgroundtask', name]);
}

/** Waits until the task's status satisfies `until`; a timeout says what the status and the Events were. */
async function waitForStatus(name: string, what: string, until: (status: any) => boolean, timeoutMs = 120_000): Promise<any> {
  try {
    return await waitFor(`${name}: ${what}`, async () => {
      const status = (await taskObject(name)).status ?? {};
      return until(status) ? status : undefined;
    }, timeoutMs);
  } catch (err) {
    const status = JSON.stringify((await taskObject(name)).status, null, 2);
    throw new Error(`${(err as Error).message}\nstatus: ${status}\nevents:\n${await describeEvents(ns)}`, { cause: err });
  }
}

async function jobsOf(name: string): Promise<any[]> {
  const list = await kubectlJson(['-n', ns, 'get', 'jobs', '-l', `workers.personal-assistant.io/task-name=${name}`]);
  return list.items.sort((a: any, b: any) => a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('runs', () => {
  it('run-now: one real run per token, its result in the status, params overrides honoured', async () => {
    await createTask('manual', { task: 'maintenance.fixture-behave', params: { note: 'from the spec' } });
    await runNow('manual', 'first');
    const first = await waitForStatus('manual', 'the manual run counted', (s) => s.succeeded === 1 && s.lastRun?.outcome === 'Succeeded');
    expect(first.lastRun).toMatchObject({ trigger: 'Manual', attempt: 1, summary: { note: 'from the spec' }, message: 'behaved: from the spec' });
    expect(first.conditions).toContainEqual(expect.objectContaining({ type: 'LastRunSucceeded', status: 'True' }));
    const jobs = await jobsOf('manual');
    expect(jobs).toHaveLength(1);
    expect(first.lastRun.runId).toBe(jobs[0].metadata.name);
    expect((await taskObject('manual')).metadata.annotations['workers.personal-assistant.io/run-now-handled']).toBe('first');

    // The same token again is not a new request.
    await kubectl(['-n', ns, 'annotate', '--overwrite', 'backgroundtask', 'manual', 'unrelated=touch']);
    await sleep(3_000);
    expect(await jobsOf('manual')).toHaveLength(1);

    await runNow('manual', 'second', { note: 'overridden' });
    const second = await waitForStatus('manual', 'the second run counted', (s) => s.succeeded === 2);
    expect(second.lastRun).toMatchObject({ trigger: 'Manual', summary: { note: 'overridden' } });
    expect(await jobsOf('manual')).toHaveLength(2);
  });

  it('counts runs whose Jobs the history limits delete at once', async () => {
    await createTask('forgetful', { task: 'maintenance.fixture-behave', history: { successfulRuns: 0, failedRuns: 0 } });
    await runNow('forgetful', 'one');
    await waitForStatus('forgetful', 'the first run counted', (s) => s.succeeded === 1);
    await runNow('forgetful', 'two');
    const s = await waitForStatus('forgetful', 'the second run counted', (st) => st.succeeded === 2);
    expect(s).toMatchObject({ failed: 0, consecutiveFailures: 0, lastRun: { outcome: 'Succeeded', trigger: 'Manual' } });
    // Deleted once counted: the finalizer held each Job only until then.
    await waitFor('no Jobs left', async () => (await jobsOf('forgetful')).length === 0, 60_000);
    expect((await taskObject('forgetful')).status.succeeded).toBe(2);
  });

  it('retries a failed run after its delay as attempt 2, and counts consecutive failures', async () => {
    await createTask('flaky', {
      task: 'maintenance.fixture-behave',
      params: { outcome: 'fail', note: 'flaky' },
      retry: { maxRetries: 1, delaySeconds: 6, backoff: 'Fixed' },
      history: { failedRuns: 5 }, // keep both failed Jobs to look at
    });
    await runNow('flaky', 'go');
    const s = await waitForStatus('flaky', 'both attempts failed and counted', (st) => st.failed === 2, 180_000);
    expect(s).toMatchObject({ succeeded: 0, failed: 2, consecutiveFailures: 2 });
    expect(s.lastRun).toMatchObject({ trigger: 'Retry', attempt: 2, outcome: 'Failed', message: expect.stringContaining('failing on purpose') });
    // The retry's runner reported it itself: the report policy admits a retry's name.
    expect(await reportedByRunner(ns, 'flaky')).toBe(true);
    const [original, retry] = await jobsOf('flaky');
    expect(retry.metadata.annotations['workers.personal-assistant.io/retry-of']).toBe(original.metadata.name);
    // The retry waited for its delay after the run ended (timestamps have whole seconds).
    const pods = await kubectlJson(['-n', ns, 'get', 'pods', '-l', `batch.kubernetes.io/job-name=${original.metadata.name}`]);
    const endedAt = Date.parse(pods.items[0].status.containerStatuses[0].state.terminated.finishedAt);
    expect(Date.parse(retry.metadata.creationTimestamp) - endedAt).toBeGreaterThanOrEqual(5_000);
    // maxRetries 1: no third attempt.
    await sleep(9_000);
    expect(await jobsOf('flaky')).toHaveLength(2);
  });

  it("cancels a run whose Job is deleted before it finished: a retry stopped so is Cancelled, counted apart, and not tried again", async () => {
    await createTask('stoppable', {
      task: 'maintenance.fixture-behave',
      // stopSeconds: its runner takes 8 s to stop once asked, longer than a run takes to be counted.
      params: { outcome: 'fail', sleepSeconds: 15, stopSeconds: 8, note: 'stoppable' },
      retry: { maxRetries: 3, delaySeconds: 1, backoff: 'Fixed' },
    });
    await runNow('stoppable', 'go');
    const retrying = await waitForStatus('stoppable', 'its retry running', (st) => st.lastRun?.trigger === 'Retry' && !st.lastRun.outcome && st.active?.length === 1, 180_000);
    const retryJob = retrying.lastRun.runId;
    const original = (await jobsOf('stoppable'))[0].metadata.name;
    expect(original).not.toBe(retryJob);
    await kubectl(['-n', ns, 'delete', 'job', retryJob, '--wait=false']);
    const s = await waitForStatus('stoppable', 'the retry counted as cancelled', (st) => st.cancelled === 1, 120_000);
    expect(s).toMatchObject({ failed: 1, consecutiveFailures: 1, lastRun: { runId: retryJob, trigger: 'Retry', attempt: 2, outcome: 'Cancelled' } });
    expect(s.conditions).toContainEqual(expect.objectContaining({ type: 'LastRunSucceeded', status: 'False', reason: 'Cancelled' }));
    // Its Job goes once its pod has stopped, and no attempt 3 follows (retries go on after a failure, not a cancel).
    await waitFor('the retry Job gone', async () => (await jobsOf('stoppable')).every((j) => j.metadata.name !== retryJob), 90_000);
    await sleep(6_000);
    expect((await jobsOf('stoppable')).map((j) => j.metadata.name)).toEqual([original]);
    expect((await taskObject('stoppable')).status).toMatchObject({ cancelled: 1, lastRun: { runId: retryJob, outcome: 'Cancelled' } });
    expect(await describeEvents(ns)).toContain(`run ${retryJob} (attempt 2) cancelled`);
  });

  it('never retries invalid input (exit 2)', async () => {
    // The built-in cleanup task needs Postgres; without DATABASE_URL the runner refuses to start it.
    await createTask('no-db', { task: 'maintenance.cleanup-old-sessions', retry: { maxRetries: 3, delaySeconds: 1, backoff: 'Fixed' } });
    await runNow('no-db', 'go');
    const s = await waitForStatus('no-db', 'the run counted', (st) => st.failed === 1);
    expect(s.lastRun).toMatchObject({ outcome: 'InvalidInput', message: expect.stringContaining('DATABASE_URL') });
    await sleep(6_000);
    expect(await jobsOf('no-db')).toHaveLength(1);
  });

  it('reports a run over its memory limit as OOMKilled', async () => {
    await createTask('hungry', {
      task: 'maintenance.fixture-behave',
      params: { allocateMiB: 400 },
      resources: { requests: { memory: '64Mi' }, limits: { memory: '64Mi' } },
    });
    await runNow('hungry', 'go');
    const s = await waitForStatus('hungry', 'the run counted', (st) => st.failed === 1);
    expect(s.lastRun, JSON.stringify(s.lastRun)).toMatchObject({ outcome: 'OOMKilled' });
    expect(s.conditions).toContainEqual(expect.objectContaining({ type: 'LastRunSucceeded', status: 'False', reason: 'OOMKilled' }));
  });

  it('reports a run over its timeout as TimedOut', async () => {
    await createTask('slow', { task: 'maintenance.fixture-behave', params: { sleepSeconds: 120 }, timeoutSeconds: 8 });
    await runNow('slow', 'go');
    const s = await waitForStatus('slow', 'the run counted', (st) => st.failed === 1);
    expect(s.lastRun).toMatchObject({ outcome: 'TimedOut' });
    const [job] = await jobsOf('slow');
    const ended = Date.parse(s.lastRun.completionTime);
    // Stopped by its soft timeout (derived from the 8 s, leaving the runner time to report), not
    // before it: counted from the Job's start, in whole seconds.
    const soft = Number(job.spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === 'BGTASK_SOFT_TIMEOUT_SECONDS').value);
    expect(soft).toBeGreaterThan(0);
    expect(soft).toBeLessThan(8);
    expect(ended - Date.parse(job.status.startTime)).toBeGreaterThanOrEqual((soft - 1) * 1000);
    expect(ended - Date.parse(job.status.startTime)).toBeLessThan(60_000);
  });

  /** A kubeconfig for the test cluster that authenticates with `token` alone. */
  function tokenKubeconfig(token: string, name: string): string {
    const admin = new KubeConfig();
    admin.loadFromFile(inject('kubeconfig'));
    return writeTokenKubeconfig(admin, { name, namespace: ns, token, path: join(tmpdir(), `${ns}-${name}.kubeconfig`) });
  }

  it("lets a run write only its own report: not another task's status, not the operator's members, not from another pod", async () => {
    // The victim's run sleeps, so it is listed in status.active while the others try.
    await createTask('victim', { task: 'maintenance.fixture-behave', params: { sleepSeconds: 180, note: 'victim' } });
    await createTask('tamperer', { task: 'maintenance.fixture-behave', params: { tamperWith: 'victim', note: 'tamperer' } });
    // A name long enough that its run-now Job has 63 characters and its pods' names cut it at 58.
    const long = `reports-${'x'.repeat(51)}`;
    await createTask(long, { task: 'maintenance.fixture-behave', params: { note: 'long' } });
    await runNow('victim', 'v1');
    const victimRun = (await waitForStatus('victim', 'its run active and started', (s) => s.active?.length === 1 && !s.active[0].queued)).active[0].name;
    await runNow('tamperer', 't1');
    await runNow(long, 'l1');

    // From a real run's pod, with its own token: each write it must not make is refused, its own report is written.
    const tamperer = await waitForStatus('tamperer', 'its run reported', (s) => s.lastRun?.outcome === 'Succeeded');
    expect(tamperer.lastRun.summary.tamper_other_task).toMatch(/^403 .*run tamperer-now-\w+ is not a run of task victim: a run reports to its own task/);
    expect(tamperer.lastRun.summary.tamper_counters).toMatch(/^403 .*a run writes status.lastRun only: the other status members are the operator's/);
    expect(tamperer.lastRun.summary.tamper_other_run).toMatch(/^403 .*run tamperer-now-\w+-forged is not a run of task tamperer/);
    const longRun = await waitForStatus(long, 'its run reported', (s) => s.lastRun?.outcome === 'Succeeded');
    expect(longRun.lastRun.runId).toHaveLength(63);
    // The outcome written by the runners themselves (admitted), not by the operator from the termination message.
    expect(await reportedByRunner(ns, 'tamperer')).toBe(true);
    expect(await reportedByRunner(ns, long)).toBe(true);
    // The victim's lastRun is still the operator's account of its run going on.
    const untouched = (status: any) => {
      expect(status.lastRun).toMatchObject({ runId: victimRun, attempt: 1 });
      expect(status.lastRun.outcome).toBeUndefined();
      expect(status.lastRun.message).toBeUndefined();
      expect(status.succeeded).toBe(0);
    };
    untouched((await taskObject('victim')).status);

    // The runner's account from elsewhere: a token bound to a pod that is not the run's, or to no pod.
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'impostor', namespace: ns },
        spec: { serviceAccountName: RUNNER_SA, restartPolicy: 'Never', containers: [{ name: 'c', image: 'bgtask.local/none:never', command: ['true'] }] },
      }),
    });
    const impostorUid = (await kubectlJson(['-n', ns, 'get', 'pod', 'impostor'])).metadata.uid;
    const bound = (await kubectl(['-n', ns, 'create', 'token', RUNNER_SA, '--bound-object-kind', 'Pod', '--bound-object-name', 'impostor', '--bound-object-uid', impostorUid])).trim();
    const unbound = (await kubectl(['-n', ns, 'create', 'token', RUNNER_SA])).trim();
    const report = JSON.stringify({ status: { lastRun: { runId: victimRun, trigger: 'Manual', attempt: 1, startTime: new Date().toISOString(), outcome: 'Failed', message: 'forged' } } });
    const write = (kubeconfig: string) => kubectlRaw(['-n', ns, 'patch', 'backgroundtask', 'victim', '--subresource=status', '--type=merge', '-p', report], { kubeconfig });
    const fromImpostor = await write(tokenKubeconfig(bound, 'impostor'));
    expect(fromImpostor.code).not.toBe(0);
    expect(fromImpostor.stderr).toContain(`pod impostor is not a pod of run ${victimRun}: a run reports its own result`);
    const fromNoPod = await write(tokenKubeconfig(unbound, 'nopod'));
    expect(fromNoPod.code).not.toBe(0);
    expect(fromNoPod.stderr).toContain('a run reports with the pod-bound ServiceAccount token Kubernetes mounts in its pod');
    untouched((await taskObject('victim')).status);
  });
});
