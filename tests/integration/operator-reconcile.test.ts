// The operator against the kind cluster: a BackgroundTask becomes a CronJob with its family's
// resources and a restricted pod; the CronJob follows the spec; an invalid spec is reported and
// changes nothing; a steady world is not written to, even by a freshly started operator; and a
// deleted task takes its CronJob with it.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BACKGROUND_TASKS, CRON_JOBS, EVENTS, JOBS } from '../../operator/kube/resources.ts';
import { createNamespace, kubectl, kubectlJson, kubectlRaw, waitFor } from '../support/kube.ts';
import { watchWrites } from '../support/watch-writes.ts';
import { prepareNamespace, startOperator, tearDown, type RunningOperator } from './operator-harness.ts';

let ns: string;
let operator: RunningOperator | undefined;

function task(name: string, spec: Record<string, unknown>) {
  return JSON.stringify({ apiVersion: 'workers.personal-assistant.io/v1alpha1', kind: 'BackgroundTask', metadata: { name, namespace: ns }, spec });
}

async function status(name: string): Promise<any> {
  return (await kubectlJson(['-n', ns, 'get', 'backgroundtask', name])).status ?? {};
}

const condition = (s: any, type: string) => (s.conditions ?? []).find((c: any) => c.type === type);

beforeAll(async () => {
  ns = await createNamespace('op-reconcile');
  await prepareNamespace(ns);
  operator = await startOperator({ kubeconfig: inject('kubeconfig'), namespace: ns });
});

afterAll(async () => {
  await tearDown(ns, operator);
});

describe('BackgroundTask → CronJob', () => {
  it('creates the CronJob with the family\'s resources and a restricted pod, and reports Ready', async () => {
    await kubectl(['apply', '-f', '-'], { input: task('nightly', { task: 'maintenance.fixture-behave', schedule: '0 3 * * *', timeZone: 'Europe/Berlin', params: { note: 'hi' } }) });
    const cronJob = await waitFor('CronJob nightly', async () => {
      const r = await kubectlRaw(['-n', ns, 'get', 'cronjob', 'nightly', '-o', 'json']);
      return r.code === 0 ? JSON.parse(r.stdout) : undefined;
    }, 60_000);
    expect(cronJob.spec).toMatchObject({ schedule: '0 3 * * *', timeZone: 'Europe/Berlin', concurrencyPolicy: 'Forbid', startingDeadlineSeconds: 3600 });
    expect(cronJob.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'BackgroundTask', name: 'nightly', controller: true, blockOwnerDeletion: true })]);
    const jobSpec = cronJob.spec.jobTemplate.spec;
    expect(jobSpec).toMatchObject({ suspend: true, backoffLimit: 0, activeDeadlineSeconds: 300 });
    const pod = jobSpec.template.spec;
    const container = pod.containers[0];
    expect(container.resources).toEqual({ requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } });
    expect(container.args).toEqual(['run', 'maintenance.fixture-behave', '--params', '{"note":"hi"}']);
    expect(container.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });

    const s = await waitFor('status of nightly', async () => {
      const current = await status('nightly');
      return condition(current, 'Ready')?.status === 'True' ? current : undefined;
    }, 30_000);
    expect(s).toMatchObject({ family: 'maintenance', cronJobName: 'nightly', observedGeneration: 1, succeeded: 0, failed: 0 });
    // 03:00 in Berlin is 02:00 UTC in winter.
    expect(s.nextScheduleTime).toMatch(/T02:00:00Z$/);
  });

  it('follows a change of the spec', async () => {
    await kubectl(['-n', ns, 'patch', 'backgroundtask', 'nightly', '--type=merge', '-p', JSON.stringify({ spec: { schedule: '30 4 * * 1-5', resources: { limits: { memory: '1Gi' } }, suspend: true } })]);
    const cronJob = await waitFor('the CronJob to follow', async () => {
      const cj = await kubectlJson(['-n', ns, 'get', 'cronjob', 'nightly']);
      return cj.spec.schedule === '30 4 * * 1-5' ? cj : undefined;
    }, 30_000);
    expect(cronJob.spec.suspend).toBe(true);
    expect(cronJob.spec.jobTemplate.spec.template.spec.containers[0].resources.limits).toEqual({ cpu: '500m', memory: '1Gi' });
    const s = await waitFor('observedGeneration 2', async () => ((await status('nightly')).observedGeneration === 2 ? status('nightly') : undefined), 30_000);
    expect(s.nextScheduleTime).toBeUndefined(); // suspended: no next run
  });

  it('reports an unknown task with a condition and an Event, and creates no CronJob', async () => {
    await kubectl(['apply', '-f', '-'], { input: task('typo', { task: 'maintenance.fixture-behaev', schedule: '0 3 * * *' }) });
    const ready = await waitFor('Ready=False on typo', async () => {
      const c = condition(await status('typo'), 'Ready');
      return c?.status === 'False' ? c : undefined;
    }, 30_000);
    expect(ready).toMatchObject({ reason: 'InvalidSpec', message: expect.stringContaining('spec.task: unknown task "maintenance.fixture-behaev" (did you mean maintenance.fixture-behave?)') });
    const events = await waitFor('an InvalidSpec Event', async () => {
      const list = await kubectlJson(['-n', ns, 'get', 'events.events.k8s.io', '--field-selector', 'regarding.name=typo']);
      return list.items.length > 0 ? list.items : undefined;
    }, 30_000);
    expect(events[0]).toMatchObject({ type: 'Warning', reason: 'InvalidSpec' });
    expect((await kubectlRaw(['-n', ns, 'get', 'cronjob', 'typo'])).code).not.toBe(0);
  });

  it('keeps the CronJob of a task whose params become invalid, and says which field', async () => {
    await kubectl(['-n', ns, 'patch', 'backgroundtask', 'nightly', '--type=merge', '-p', JSON.stringify({ spec: { params: { allocateMiB: -1 } } })]);
    const ready = await waitFor('Ready=False on nightly', async () => {
      const c = condition(await status('nightly'), 'Ready');
      return c?.status === 'False' ? c : undefined;
    }, 30_000);
    expect(ready).toMatchObject({ reason: 'InvalidSpec', message: expect.stringContaining('spec.params.allocateMiB') });
    const cronJob = await kubectlJson(['-n', ns, 'get', 'cronjob', 'nightly']);
    expect(cronJob.spec.jobTemplate.spec.template.spec.containers[0].args).toEqual(['run', 'maintenance.fixture-behave', '--params', '{"note":"hi"}']);
    await kubectl(['-n', ns, 'patch', 'backgroundtask', 'nightly', '--type=merge', '-p', JSON.stringify({ spec: { params: { allocateMiB: 0 } } })]);
    await waitFor('Ready again', async () => condition(await status('nightly'), 'Ready')?.status === 'True', 30_000);
  });

  it('writes nothing while nothing changes, even after a restart that reconciles every task again', async () => {
    // Stopping flushes the Event series still pending from the changes above; from then on the
    // world is steady, and the new operator's first pass over every task must find nothing to do.
    await operator?.stop();
    operator = undefined;
    const writes = await watchWrites(inject('kubeconfig'), ns, [BACKGROUND_TASKS, CRON_JOBS, JOBS, EVENTS]);
    let seen: string[];
    try {
      operator = await startOperator({ kubeconfig: inject('kubeconfig'), namespace: ns });
      await new Promise((r) => setTimeout(r, 12_000));
    } finally {
      seen = await writes.stop();
    }
    expect(seen).toEqual([]);
    // Not vacuous: the new operator did look at every task.
    expect([...operator!.reconciled.keys()].sort()).toEqual([`${ns}/nightly`, `${ns}/typo`]);
  });

  it('lets the garbage collector take the CronJob with the task', async () => {
    await kubectl(['-n', ns, 'delete', 'backgroundtask', 'nightly', '--wait=true']);
    await waitFor('CronJob nightly to be collected', async () => (await kubectlRaw(['-n', ns, 'get', 'cronjob', 'nightly'])).code !== 0, 60_000);
  });
});
