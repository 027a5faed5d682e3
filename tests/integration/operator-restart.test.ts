// Idempotence across a restart: 100 tasks, each with a run-now request, and an operator stopped
// halfway through them. The next operator converges — every task Ready, every CronJob there —
// and no request is answered twice: exactly one manual Job per task. The family is paused
// (concurrency 0) so the runs wait as suspended Jobs and the test starts no pods.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createNamespace, kubectl, kubectlJson, waitFor } from '../support/kube.ts';
import { prepareNamespace, startOperator, tearDown, type RunningOperator } from './operator-harness.ts';

const COUNT = 100;
let ns: string;
let operator: RunningOperator | undefined;

beforeAll(async () => {
  ns = await createNamespace('op-restart');
  await prepareNamespace(ns);
});

afterAll(async () => {
  await tearDown(ns, operator);
});

const names = Array.from({ length: COUNT }, (_, i) => `task-${String(i).padStart(3, '0')}`);

async function countCronJobs(): Promise<number> {
  return (await kubectlJson(['-n', ns, 'get', 'cronjobs'])).items.length;
}

describe('operator restart', () => {
  it('converges after a restart halfway through 100 tasks, with no duplicate Jobs', async () => {
    const items = names.map((name) => ({
      apiVersion: 'workers.personal-assistant.io/v1alpha1',
      kind: 'BackgroundTask',
      metadata: { name, namespace: ns, annotations: { 'workers.personal-assistant.io/run-now': 'boot' } },
      spec: { task: 'maintenance.fixture-behave', schedule: '0 0 1 1 *', params: { note: name } },
    }));
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }) });

    const families = 'maintenance: { concurrency: 0 }';
    operator = await startOperator({ kubeconfig: inject('kubeconfig'), namespace: ns, familiesYaml: families, workers: 4 });
    await waitFor('some CronJobs', async () => (await countCronJobs()) >= 20, 120_000, 200);
    await operator.stop();
    operator = undefined;
    const before = await countCronJobs();
    expect(before).toBeLessThan(COUNT); // stopped halfway, not after the end

    operator = await startOperator({ kubeconfig: inject('kubeconfig'), namespace: ns, familiesYaml: families, workers: 4 });
    const tasks = await waitFor(
      'every task reconciled',
      async () => {
        const list = (await kubectlJson(['-n', ns, 'get', 'backgroundtasks'])).items;
        const done = list.filter(
          (t: any) =>
            t.metadata.annotations?.['workers.personal-assistant.io/run-now-handled'] === 'boot' &&
            t.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') &&
            t.status?.active?.length === 1,
        );
        return done.length === COUNT ? list : undefined;
      },
      240_000,
      2_000,
    );
    expect(tasks).toHaveLength(COUNT);
    expect(await countCronJobs()).toBe(COUNT);

    const jobs = (await kubectlJson(['-n', ns, 'get', 'jobs'])).items;
    const perTask = new Map<string, number>();
    for (const job of jobs) {
      const task = job.metadata.labels['workers.personal-assistant.io/task-name'];
      perTask.set(task, (perTask.get(task) ?? 0) + 1);
    }
    expect(jobs).toHaveLength(COUNT);
    expect([...perTask.values()].every((n) => n === 1)).toBe(true);
    // All waiting: the family is paused.
    expect(jobs.every((j: any) => j.spec.suspend === true)).toBe(true);
    expect(tasks.every((t: any) => t.status.active[0].queued === true)).toBe(true);
  });
});
