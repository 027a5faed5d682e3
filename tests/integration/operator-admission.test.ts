// Family concurrency with the real CronJob controller: three tasks of a family limited to one
// run at a time come due in the same minute; one runs, two wait (suspended Jobs, shown as queued
// in their status), and they are let in one at a time, oldest first — never two at once.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createNamespace, describeEvents, kubectl, kubectlJson, waitFor } from '../support/kube.ts';
import { prepareNamespace, reportedByRunner, startOperator, tearDown, type RunningOperator } from './operator-harness.ts';

let ns: string;
let operator: RunningOperator | undefined;
const TASKS = ['zeta', 'alpha', 'mid'];

beforeAll(async () => {
  ns = await createNamespace('op-admission');
  await prepareNamespace(ns);
  operator = await startOperator({ kubeconfig: inject('kubeconfig'), namespace: ns, familiesYaml: 'maintenance: { concurrency: 1 }' });
});

afterAll(async () => {
  await tearDown(ns, operator);
});

const running = (job: any) => job.spec.suspend === false && !(job.status?.conditions ?? []).some((c: any) => ['Complete', 'Failed'].includes(c.type) && c.status === 'True');

async function jobs(): Promise<any[]> {
  return (await kubectlJson(['-n', ns, 'get', 'jobs', '-l', 'workers.personal-assistant.io/family=maintenance'])).items;
}

describe('family admission', () => {
  it('runs one of three due runs, queues two, and admits them in order', async () => {
    for (const name of TASKS) {
      const manifest = {
        apiVersion: 'workers.personal-assistant.io/v1alpha1',
        kind: 'BackgroundTask',
        metadata: { name, namespace: ns },
        spec: { task: 'maintenance.fixture-behave', schedule: '* * * * *', params: { sleepSeconds: 12, note: name } },
      };
      await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
    }
    // The CronJob controller makes the three Jobs at the next minute.
    const created = await waitFor('three scheduled Jobs', async () => ((await jobs()).length >= 3 ? jobs() : undefined), 90_000);
    // One run each is enough: no more schedules.
    for (const name of TASKS) await kubectl(['-n', ns, 'patch', 'backgroundtask', name, '--type=merge', '-p', '{"spec":{"schedule":"0 0 1 1 *"}}']);

    // Never more than one running, sampled until all three are done.
    let maxRunning = 0;
    let firstRunning = '';
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxRunning = Math.max(maxRunning, (await jobs()).filter(running).length);
        await new Promise((r) => setTimeout(r, 500));
      }
    })();

    try {
      const statuses = await waitFor('one running and two queued', async () => {
        const all = await Promise.all(TASKS.map(async (name) => (await kubectlJson(['-n', ns, 'get', 'backgroundtask', name])).status ?? {}));
        const active = all.flatMap((s) => s.active ?? []);
        return active.length === 3 && active.filter((a: any) => a.queued).length === 2 ? all : undefined;
      }, 30_000);
      firstRunning = statuses.flatMap((s) => s.active ?? []).find((a: any) => !a.queued).name;
      const queued = statuses.filter((s) => s.conditions?.some((c: any) => c.type === 'Queued' && c.status === 'True'));
      expect(queued).toHaveLength(2);
      expect(queued[0].conditions.find((c: any) => c.type === 'Queued').message).toMatch(/waits for a slot: family maintenance runs 1 at once/);

      await waitFor(
        'all three runs counted',
        async () => {
          const all = await Promise.all(TASKS.map(async (name) => (await kubectlJson(['-n', ns, 'get', 'backgroundtask', name])).status ?? {}));
          return all.every((s) => s.succeeded === 1);
        },
        150_000,
      ).catch(async (err: Error) => {
        throw new Error(`${err.message}\n${await describeEvents(ns)}`, { cause: err });
      });
      // Scheduled runs (named by the CronJob controller) reported by their runners themselves.
      for (const name of TASKS) expect(await reportedByRunner(ns, name), name).toBe(true);
    } finally {
      sampling = false;
      await sampler;
    }
    expect(maxRunning).toBe(1);

    // The first Job was admitted as it appeared; the two that waited were let in oldest first
    // (creation time, then namespace/name: the CronJob controller made all three in one second).
    const finished = (await jobs()).filter((j) => created.some((c: any) => c.metadata.uid === j.metadata.uid));
    const waited = finished.filter((j) => j.metadata.name !== firstRunning);
    const expected = [...waited].sort((a, b) => a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp) || a.metadata.name.localeCompare(b.metadata.name));
    const byStart = [...finished].sort((a, b) => a.status.startTime.localeCompare(b.status.startTime));
    expect(byStart.map((j) => j.metadata.name)).toEqual([firstRunning, ...expected.map((j) => j.metadata.name)]);
    // Every admitted Job carries the run-accounting finalizer until its run is counted.
    for (const job of finished) expect(job.metadata.finalizers).toContain('workers.personal-assistant.io/run-accounting');
  });

  it('concurrencyPolicy Replace: a run-now stops the task\'s running run and takes its slot once that run has stopped, instead of queueing behind it', async () => {
    const name = 'replacer';
    const manifest = {
      apiVersion: 'workers.personal-assistant.io/v1alpha1',
      kind: 'BackgroundTask',
      metadata: { name, namespace: ns },
      // The long run takes 8 s to stop when asked: its slot is not free until it has.
      spec: { task: 'maintenance.fixture-behave', schedule: '0 0 1 1 *', concurrencyPolicy: 'Replace', params: { sleepSeconds: 600, stopSeconds: 8, note: 'long' } },
    };
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
    const ofTask = async () => (await kubectlJson(['-n', ns, 'get', 'jobs', '-l', `workers.personal-assistant.io/task-name=${name}`])).items;
    await kubectl(['-n', ns, 'annotate', '--overwrite', 'backgroundtask', name, 'workers.personal-assistant.io/run-now=long']);
    const [long] = await waitFor('the long run going', async () => {
      const list = (await ofTask()).filter(running);
      return list.length === 1 ? list : undefined;
    }, 60_000);
    // Never two of the task's runner containers running at once, sampled until the short run is counted.
    const runningPods = async () =>
      (await kubectlJson(['-n', ns, 'get', 'pods', '-l', `workers.personal-assistant.io/task-name=${name}`])).items
        .filter((p: any) => p.status?.phase === 'Running' && (p.status.containerStatuses ?? []).some((c: any) => c.state?.running))
        .map((p: any) => p.metadata.name);
    const overlaps: string[][] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const now = await runningPods();
        if (now.length > 1) overlaps.push(now);
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    // The family's one slot is taken by the long run: without Replace the short one would wait ten minutes.
    await kubectl(['-n', ns, 'annotate', '--overwrite', 'backgroundtask', name, 'workers.personal-assistant.io/run-now=short', 'workers.personal-assistant.io/run-now-params={"sleepSeconds":1,"note":"short"}']);
    const status = await waitFor('the short run counted', async () => {
      const s = (await kubectlJson(['-n', ns, 'get', 'backgroundtask', name])).status ?? {};
      return s.succeeded === 1 && s.lastRun?.summary?.note === 'short' ? s : undefined;
    }, 120_000).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await describeEvents(ns)}`, { cause: err });
    }).finally(async () => {
      sampling = false;
      await sampler;
    });
    expect(overlaps).toEqual([]);
    expect(status.lastRun).toMatchObject({ trigger: 'Manual', outcome: 'Succeeded' });
    // The long run is gone (or going), counted once as cancelled (it took 8 s to stop: longer than
    // a run takes to be counted), never as failed, and the Event says who replaced it.
    const left = await ofTask();
    expect(left.find((j: any) => j.metadata.uid === long.metadata.uid && !j.metadata.deletionTimestamp)).toBeUndefined();
    const said = `run ${long.metadata.name} stopped: run ${status.lastRun.runId} replaces it (concurrencyPolicy Replace)`;
    await waitFor('the RunReplaced Event', async () => ((await describeEvents(ns)).includes(said) ? true : undefined), 30_000);
    await waitFor('the long run gone', async () => ((await ofTask()).some((j: any) => j.metadata.uid === long.metadata.uid) ? undefined : true), 60_000);
    const after = (await kubectlJson(['-n', ns, 'get', 'backgroundtask', name])).status;
    expect(after).toMatchObject({ succeeded: 1, cancelled: 1 });
    expect(after.failed ?? 0).toBe(0);
  });
});
