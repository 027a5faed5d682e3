// Writes that cost nothing when nothing changed, against the real apiserver: created by POST,
// server-side apply skipped when the cached object carries the desired hash (no request,
// resourceVersion unchanged), re-applied when the desired object or someone else's edit changes
// things (after a restart too, when the cached spec differs from the desired one or someone else
// wrote the job template the cache leaves out), and a field the
// desired object drops removed even from an object the POST created;
// status merge patches skipped when equal; Events deduplicated into a series.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pino from 'pino';
import { HttpMethod, KubeConfig } from '@kubernetes/client-node';
import { APPLIED_HASH_ANNOTATION, Applier, FIELD_MANAGER } from '../../operator/kube/apply.ts';
import { StaleObjectError } from '../../operator/kube/errors.ts';
import { KubeEventRecorder, REPORTING_CONTROLLER, apiEventSink } from '../../operator/kube/events.ts';
import { Informer } from '../../operator/kube/informer.ts';
import { RawApi, type RequestOptions } from '../../operator/kube/raw-api.ts';
import { CRON_JOBS, objectPath } from '../../operator/kube/resources.ts';
import { compactCronJob } from '../../operator/kube/transforms.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { createNamespace, deleteNamespace, installCrd, kubectl, kubectlJson, waitFor } from '../support/kube.ts';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** The real client, counting what it sends. */
class CountingRawApi extends RawApi {
  sent: string[] = [];
  override request<T>(method: HttpMethod, path: string, opts?: RequestOptions): Promise<T> {
    this.sent.push(`${method} ${path}`);
    return super.request<T>(method, path, opts);
  }
}

type Env = { name: string; value: string }[];
type CronJob = KubeObject & {
  spec?: { schedule?: string; suspend?: boolean; jobTemplate?: { spec?: { template?: { spec?: { restartPolicy?: string; containers?: { env?: Env }[] } } } } };
};

function desiredCronJob(ns: string, schedule: string, opts: { name?: string; env?: Env } = {}): CronJob {
  const container = { name: 'c', image: 'bgtask.local/node-runtime:24', args: ['-e', '0'], ...(opts.env ? { env: opts.env } : {}) };
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: opts.name ?? 'applied', namespace: ns, labels: { 'app.kubernetes.io/managed-by': 'bgtask-operator' } },
    spec: {
      schedule,
      suspend: false,
      jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers: [container] } } } },
    },
  };
}

const managers = (o: KubeObject) => (o.metadata?.managedFields ?? []).filter((m) => !m.subresource).map((m) => `${m.manager}/${m.operation}`);

describe('Applier and EventRecorder against the apiserver', () => {
  let ns: string;
  let raw: CountingRawApi;
  let applier: Applier;
  let cronJobs: Informer<CronJob>;

  beforeAll(async () => {
    ns = await createNamespace('kube-apply');
    const kc = new KubeConfig();
    kc.loadFromFile(inject('kubeconfig'));
    raw = new CountingRawApi(kc);
    applier = new Applier({ raw, log });
    cronJobs = new Informer<CronJob>({ raw: new RawApi(kc), resource: CRON_JOBS, namespace: ns, log, transform: compactCronJob });
    cronJobs.start();
    await cronJobs.waitForSync();
    await installCrd();
  });

  afterAll(async () => {
    await cronJobs?.stop();
    if (ns) await deleteNamespace(ns);
  });

  /** The cached CronJob once the informer has caught up with resourceVersion rv. */
  const cachedAt = (rv: string | undefined, name = 'applied') =>
    waitFor(`the cache at resourceVersion ${rv}`, async () => {
      const c = cronJobs.store.get(ns, name);
      return c?.metadata?.resourceVersion === rv ? c : undefined;
    }, 20_000, 50);

  it('creates by POST, then skips the request while the cached object carries the same hash', async () => {
    const first = await applier.apply(desiredCronJob(ns, '0 3 * * *'));
    expect(first.changed).toBe(true);
    expect(raw.sent.at(-1)).toBe(`POST /apis/batch/v1/namespaces/${ns}/cronjobs`);
    const rv = first.object.metadata?.resourceVersion;
    expect(first.object.metadata?.annotations?.[APPLIED_HASH_ANNOTATION]).toBeTruthy();
    expect(managers(first.object)).toEqual([`${FIELD_MANAGER}/Update`]);

    const live = await cachedAt(rv);
    const sentBefore = raw.sent.length;
    const again = await applier.apply(desiredCronJob(ns, '0 3 * * *'), live);
    expect(again.changed).toBe(false);
    expect(raw.sent.length).toBe(sentBefore); // no request at all
    const onServer = await kubectlJson<CronJob>(['-n', ns, 'get', 'cronjob', 'applied']);
    expect(onServer.metadata?.resourceVersion).toBe(rv);
  });

  it('applies again when the desired object changes, owning what the POST made as its applier from then on', async () => {
    const live = cronJobs.store.get(ns, 'applied');
    const changed = await applier.apply(desiredCronJob(ns, '30 4 * * *'), live);
    expect(changed.changed).toBe(true);
    expect(changed.object.spec?.schedule).toBe('30 4 * * *');
    expect(managers(changed.object)).toEqual([`${FIELD_MANAGER}/Apply`]);
    expect(changed.object.metadata?.resourceVersion).not.toBe(live?.metadata?.resourceVersion);
    await cachedAt(changed.object.metadata?.resourceVersion);
  });

  /** Suspends the CronJob by hand, as someone else would, and returns it once the cache shows the edit. */
  const suspendedByHand = async () => {
    await kubectl(['-n', ns, 'patch', 'cronjob', 'applied', '--type=merge', '-p', '{"spec":{"suspend":true}}']);
    return waitFor('the edit in the cache', async () => {
      const c = cronJobs.store.get(ns, 'applied');
      return c?.spec?.suspend === true ? c : undefined;
    }, 20_000, 50);
  };

  it('takes its fields back when someone else edits the spec (the generation moves past its own apply)', async () => {
    const edited = await suspendedByHand();
    const result = await applier.apply(desiredCronJob(ns, '30 4 * * *'), edited);
    expect(result.changed).toBe(true);
    expect(result.object.spec?.suspend).toBe(false);
    // A restarted operator (no memory of its applies) finds the cached spec as desired: no request.
    const fresh = new Applier({ raw, log });
    const live = await cachedAt(result.object.metadata?.resourceVersion);
    const sentBefore = raw.sent.length;
    expect((await fresh.apply(desiredCronJob(ns, '30 4 * * *'), live)).changed).toBe(false);
    expect(raw.sent.length).toBe(sentBefore);
  });

  it('after a restart, takes back an edit made while it was down, and one made after it', async () => {
    // Edited while no operator ran: the hash still matches, the spec does not.
    const whileDown = await suspendedByHand();
    const restarted = new Applier({ raw, log });
    const first = await restarted.apply(desiredCronJob(ns, '30 4 * * *'), whileDown);
    expect(first.changed).toBe(true);
    expect(first.object.spec?.suspend).toBe(false);
    await cachedAt(first.object.metadata?.resourceVersion);

    // Restarted again, it first sees the CronJob as desired: that generation is its baseline.
    const again = new Applier({ raw, log });
    expect((await again.apply(desiredCronJob(ns, '30 4 * * *'), cronJobs.store.get(ns, 'applied'))).changed).toBe(false);
    const after = await suspendedByHand();
    const second = await again.apply(desiredCronJob(ns, '30 4 * * *'), after);
    expect(second.changed).toBe(true);
    expect(second.object.spec?.suspend).toBe(false);
    await cachedAt(second.object.metadata?.resourceVersion);
  });

  it('after a restart, takes back a job template edit made while it was down (a part of the spec its cache does not keep)', async () => {
    const before = cronJobs.store.get(ns, 'applied');
    // Told apart from the operator's own last write by the managedFields times, which have whole seconds.
    await new Promise((r) => setTimeout(r, 1100));
    const argsPath = '/spec/jobTemplate/spec/template/spec/containers/0/args';
    await kubectl(['-n', ns, 'patch', 'cronjob', 'applied', '--type=json', '-p', JSON.stringify([{ op: 'replace', path: argsPath, value: ['-e', '1'] }])]);
    const edited = await waitFor('the edit in the cache', async () => {
      const c = cronJobs.store.get(ns, 'applied');
      return c && c.metadata?.resourceVersion !== before?.metadata?.resourceVersion ? c : undefined;
    }, 20_000, 50);
    expect(edited.spec).toEqual(before?.spec); // the cached spec cannot show it

    const restarted = new Applier({ raw, log });
    const result = await restarted.apply(desiredCronJob(ns, '30 4 * * *'), edited);
    expect(result.changed).toBe(true);
    expect(result.object.spec?.jobTemplate?.spec?.template?.spec?.containers?.[0]).toMatchObject({ args: ['-e', '0'] });

    // Restarted again: nobody has written the spec since, so nothing to do.
    const live = await cachedAt(result.object.metadata?.resourceVersion);
    const again = new Applier({ raw, log });
    const sentBefore = raw.sent.length;
    expect((await again.apply(desiredCronJob(ns, '30 4 * * *'), live)).changed).toBe(false);
    expect(raw.sent.length).toBe(sentBefore);
  });

  it('after a restart, applies once more over a template field someone else added, which changes nothing and stays theirs', async () => {
    const before = cronJobs.store.get(ns, 'applied');
    await new Promise((r) => setTimeout(r, 1100));
    const envPath = '/spec/jobTemplate/spec/template/spec/containers/0/env';
    await kubectl(['-n', ns, 'patch', 'cronjob', 'applied', '--type=json', '-p', JSON.stringify([{ op: 'add', path: envPath, value: [{ name: 'EXTRA', value: '1' }] }])]);
    const added = await waitFor('the edit in the cache', async () => {
      const c = cronJobs.store.get(ns, 'applied');
      return c && c.metadata?.resourceVersion !== before?.metadata?.resourceVersion ? c : undefined;
    }, 20_000, 50);
    const restarted = new Applier({ raw, log });
    const sentBefore = raw.sent.length;
    const result = await restarted.apply(desiredCronJob(ns, '30 4 * * *'), added);
    expect(raw.sent.slice(sentBefore)).toEqual([`PATCH /apis/batch/v1/namespaces/${ns}/cronjobs/applied`]);
    expect(result.changed).toBe(false);
    expect(result.object.metadata?.resourceVersion).toBe(added.metadata?.resourceVersion);
    expect(result.object.spec?.jobTemplate?.spec?.template?.spec?.containers?.[0]?.env).toEqual([{ name: 'EXTRA', value: '1' }]);
  });

  it('removes a field the desired object drops from a CronJob it created by POST', async () => {
    const env = [{ name: 'KEEP', value: '1' }, { name: 'DROP', value: '2' }];
    const created = await applier.apply(desiredCronJob(ns, '0 5 * * *', { name: 'dropping', env }));
    const live = await cachedAt(created.object.metadata?.resourceVersion, 'dropping');
    const upgradesBefore = applier.stats.ownershipUpgrades;
    const result = await applier.apply(desiredCronJob(ns, '0 5 * * *', { name: 'dropping', env: env.slice(0, 1) }), live);
    expect(applier.stats.ownershipUpgrades).toBe(upgradesBefore + 1);
    expect(result.object.spec?.jobTemplate?.spec?.template?.spec?.containers?.[0]?.env).toEqual([{ name: 'KEEP', value: '1' }]);
    const onServer = await kubectlJson<CronJob>(['-n', ns, 'get', 'cronjob', 'dropping', '--show-managed-fields']);
    expect(onServer.spec?.jobTemplate?.spec?.template?.spec?.containers?.[0]?.env).toEqual([{ name: 'KEEP', value: '1' }]);
    expect(managers(onServer)).toEqual([`${FIELD_MANAGER}/Apply`]);
    // Applied from then on: the cache carries no marker, and the next change is one request.
    const cached = await cachedAt(result.object.metadata?.resourceVersion, 'dropping');
    const sentBefore = raw.sent.length;
    await applier.apply(desiredCronJob(ns, '0 5 * * *', { name: 'dropping' }), cached);
    expect(raw.sent.slice(sentBefore)).toEqual([`PATCH /apis/batch/v1/namespaces/${ns}/cronjobs/dropping`]);
    expect(applier.stats.ownershipUpgrades).toBe(upgradesBefore + 1);
  });

  it('patches status only with what differs, and not at all when nothing does', async () => {
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'workers.personal-assistant.io/v1alpha1',
        kind: 'BackgroundTask',
        metadata: { name: 'status-test', namespace: ns },
        spec: { task: 'maintenance.cleanup-old-sessions', schedule: '0 3 * * *' },
      }),
    });
    const path = objectPath({ group: 'workers.personal-assistant.io', version: 'v1alpha1', kind: 'BackgroundTask', plural: 'backgroundtasks', namespaced: true }, ns, 'status-test');
    type Task = KubeObject & { status?: Record<string, unknown> };
    const task = await raw.request<Task>(HttpMethod.GET, path);

    const first = await applier.patchStatus(task, { succeeded: 1, failed: 0, family: 'maintenance' });
    expect(first.changed).toBe(true);
    expect(first.object?.status).toMatchObject({ succeeded: 1, failed: 0, family: 'maintenance' });

    const sentBefore = raw.sent.length;
    const same = await applier.patchStatus(first.object as Task, { family: 'maintenance', failed: 0, succeeded: 1 });
    expect(same.changed).toBe(false);
    expect(raw.sent.length).toBe(sentBefore);
    expect((await raw.request<Task>(HttpMethod.GET, path)).metadata?.resourceVersion).toBe(first.object?.metadata?.resourceVersion);

    const removed = await applier.patchStatus(first.object as Task, { failed: undefined, succeeded: 2 });
    expect(removed.object?.status).toEqual({ succeeded: 2, family: 'maintenance' });

    // Computed from a copy older than the object (a cache behind): refused, nothing overwritten.
    await expect(applier.patchStatus(task, { succeeded: 1, failed: 0 })).rejects.toThrow(StaleObjectError);
    expect((await raw.request<Task>(HttpMethod.GET, path)).status).toEqual({ succeeded: 2, family: 'maintenance' });
  });

  it('records repeated events as one Event with a series count', async () => {
    const task = await kubectlJson<KubeObject>(['-n', ns, 'get', 'backgroundtask', 'status-test']);
    const recorder = new KubeEventRecorder({ sink: apiEventSink(raw), log, instance: 'test-pod', seriesFlushMs: 100 });
    for (let i = 0; i < 3; i++) recorder.record(task, 'Warning', 'TestRunFailed', 'exit code 1');
    recorder.record(task, 'Normal', 'TestRunSucceeded', 'exit code 0');
    await new Promise((r) => setTimeout(r, 300));
    await recorder.flush();
    expect(recorder.stats.failures).toBe(0);
    const list = await kubectlJson<{ items: any[] }>(['-n', ns, 'get', 'events.events.k8s.io']);
    const ours = list.items.filter((e) => e.regarding?.uid === task.metadata?.uid);
    expect(ours.map((e) => e.reason).sort()).toEqual(['TestRunFailed', 'TestRunSucceeded']);
    const failed = ours.find((e) => e.reason === 'TestRunFailed');
    expect(failed).toMatchObject({
      type: 'Warning',
      note: 'exit code 1',
      action: 'Reconcile',
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: 'test-pod',
      regarding: { kind: 'BackgroundTask', name: 'status-test', namespace: ns },
      series: { count: 3 },
    });
    // kubectl describe shows it (the core/v1 view of the same Event).
    const described = await kubectl(['-n', ns, 'describe', 'backgroundtask', 'status-test']);
    expect(described).toMatch(/TestRunFailed/);
  });
});
