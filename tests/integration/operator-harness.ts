// The operator, started inside the test process against the kind cluster: the same informers,
// work queue, controller workers and reconciler as operator/main.ts, plus what the tests need —
// a runner pod that mounts the test plugin from a ConfigMap, a families config set directly,
// and the namespace prepared for runs (runner ServiceAccount and its Role).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { loadRegistry } from '../../task-runner/registry.ts';
import { FamiliesConfigHolder } from '../../operator/config/families.ts';
import type { CronJob, Job, Pod, Task } from '../../operator/controller/deps.ts';
import { JOB_INDEXERS, POD_INDEXERS, TASK_INDEXERS, TASKS_BY_FAMILY } from '../../operator/controller/indexes.ts';
import { routeEvents } from '../../operator/controller/event-routing.ts';
import { WriteExpectations } from '../../operator/controller/expectations.ts';
import { createReconciler } from '../../operator/controller/reconcile.ts';
import { FIELD_MANAGER } from '../../operator/kube/apply.ts';
import { createClients, loadKubeConfig } from '../../operator/kube/clients.ts';
import { Controller } from '../../operator/kube/controller.ts';
import { KubeEventRecorder, apiEventSink } from '../../operator/kube/events.ts';
import { Informer, type InformerStats } from '../../operator/kube/informer.ts';
import { MANAGED_SELECTOR, objectKey } from '../../operator/kube/keys.ts';
import { BACKGROUND_TASKS, CRON_JOBS, JOBS, PODS } from '../../operator/kube/resources.ts';
import { OWNER_UID_INDEX, ownerUidIndex } from '../../operator/kube/store.ts';
import { compactCronJob, slimJob, slimPod } from '../../operator/kube/transforms.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { WorkQueue } from '../../operator/kube/workqueue.ts';
import { createMetrics } from '../../operator/metrics.ts';
import { ROOT } from '../support/platform.ts';
import { kubectl, kubectlRaw, waitFor } from '../support/kube.ts';

export const RUNNER_IMAGE = 'bgtask.local/task-runner:dev';
export const RUNNER_SA = 'bgtask-runner';
export const PLUGIN_FILE = 'operator-test-tasks.mjs';
export const PLUGIN_HOST_PATH = join(ROOT, 'tests/fixtures/plugins', PLUGIN_FILE);
const PLUGIN_CONFIGMAP = 'operator-test-plugins';
const PLUGIN_MOUNT = '/plugins';

/** Installs the CRD (idempotent) and what runs need in `namespace`: the runner's ServiceAccount and Role, the plugin ConfigMap. */
export async function prepareNamespace(namespace: string): Promise<void> {
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(ROOT, 'crds/workers.personal-assistant.io_backgroundtasks.yaml')]);
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/backgroundtasks.workers.personal-assistant.io']);
  const rbac = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: RUNNER_SA, namespace } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: RUNNER_SA, namespace },
      rules: [{ apiGroups: ['workers.personal-assistant.io'], resources: ['backgroundtasks', 'backgroundtasks/status'], verbs: ['get', 'patch'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: RUNNER_SA, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: RUNNER_SA },
      subjects: [{ kind: 'ServiceAccount', name: RUNNER_SA, namespace }],
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: PLUGIN_CONFIGMAP, namespace },
      data: { [PLUGIN_FILE]: readFileSync(PLUGIN_HOST_PATH, 'utf8') },
    },
  ];
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rbac }) });
}

/**
 * Deletes a test namespace while the operator still runs, so it lifts its finalizers from the
 * Jobs of the tasks going away (as it must on any task deletion); then stops the operator.
 */
export async function tearDown(namespace: string | undefined, operator: RunningOperator | undefined): Promise<void> {
  if (namespace) {
    await kubectl(['delete', 'namespace', namespace, '--wait=false']);
    if (operator) {
      await waitFor(`the Jobs of ${namespace} to go`, async () => (await kubectlRaw(['-n', namespace, 'get', 'jobs', '-o', 'name'])).stdout.trim() === '', 120_000, 1_000);
    }
  }
  await operator?.stop();
}

export interface RunningOperator {
  /** Reconciles finished so far, by task key. */
  readonly reconciled: Map<string, number>;
  /** Each informer's counters (lists, watch errors, stalls…), by resource plural. */
  informerStats(): Record<string, InformerStats>;
  /** Puts a new families.yaml in force (as a ConfigMap update would). */
  setFamilies(yaml: string): void;
  /** Stops the workers (waiting for in-flight reconciles), the informers and the event writer. */
  stop(): Promise<void>;
}

export async function startOperator(opts: { kubeconfig: string; namespace: string; familiesYaml?: string; workers?: number }): Promise<RunningOperator> {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const { kubeConfig } = loadKubeConfig({ kubeconfig: opts.kubeconfig });
  const clients = createClients(kubeConfig);
  const registry = await loadRegistry({ TASK_PLUGINS: PLUGIN_HOST_PATH });
  const events = new KubeEventRecorder({ sink: apiEventSink(clients.raw), log, instance: 'integration-test' });
  const families = new FamiliesConfigHolder({ log, events });
  if (opts.familiesYaml !== undefined) {
    const initial = families.update({ metadata: { name: 'test-families' }, data: { 'families.yaml': opts.familiesYaml } });
    if (!initial.ok) throw initial.error;
  }

  const common = { raw: clients.raw, log, namespace: opts.namespace };
  const tasks = new Informer<Task & KubeObject>({ ...common, resource: BACKGROUND_TASKS, indexers: TASK_INDEXERS });
  const cronJobs = new Informer<CronJob>({ ...common, resource: CRON_JOBS, transform: compactCronJob, labelSelector: MANAGED_SELECTOR, indexers: { [OWNER_UID_INDEX]: ownerUidIndex } });
  const jobs = new Informer<Job>({ ...common, resource: JOBS, labelSelector: MANAGED_SELECTOR, indexers: JOB_INDEXERS, transform: slimJob });
  const pods = new Informer<Pod>({ ...common, resource: PODS, labelSelector: MANAGED_SELECTOR, indexers: POD_INDEXERS, transform: slimPod });
  const informers = [tasks, cronJobs, jobs, pods];

  const queue = new WorkQueue();
  const expectations = new WriteExpectations();
  routeEvents({ tasks, cronJobs, jobs, pods, queue, expectations });

  const reconcile = createReconciler({
    clients,
    caches: { tasks: tasks.store, cronJobs: cronJobs.store, jobs: jobs.store, pods: pods.store },
    families: () => families.current(),
    events,
    metrics: createMetrics({ defaultMetrics: false }),
    clock: () => new Date(),
    log,
    settings: {
      namespace: opts.namespace,
      runnerImage: RUNNER_IMAGE,
      runnerServiceAccount: RUNNER_SA,
      fieldManager: FIELD_MANAGER,
      env: [{ name: 'TASK_PLUGINS', value: `${PLUGIN_MOUNT}/${PLUGIN_FILE}` }],
      volumes: [{ name: 'plugins', configMap: { name: PLUGIN_CONFIGMAP } }],
      volumeMounts: [{ name: 'plugins', mountPath: PLUGIN_MOUNT, readOnly: true }],
    },
    registry,
    expectations,
  });
  const reconciled = new Map<string, number>();
  const counted = async (key: string) => {
    const result = await reconcile(key);
    reconciled.set(key, (reconciled.get(key) ?? 0) + 1);
    return result;
  };
  const controller = new Controller({ queue, reconcile: counted, workers: opts.workers ?? 4, log });

  for (const informer of informers) informer.start();
  await Promise.all(informers.map((informer) => informer.waitForSync()));
  controller.start();

  return {
    reconciled,
    informerStats: () => Object.fromEntries(informers.map((i, n) => [['backgroundtasks', 'cronjobs', 'jobs', 'pods'][n]!, { ...i.stats }])),
    setFamilies(yaml) {
      const result = families.update({ metadata: { name: 'test-families' }, data: { 'families.yaml': yaml } });
      if (!result.ok) throw result.error;
      // As operator/main.ts does: every task of a changed family is reconciled again.
      for (const family of result.changed) for (const t of tasks.store.byIndex(TASKS_BY_FAMILY, family)) queue.add(objectKey(t));
    },
    async stop() {
      await controller.stop(30_000);
      await events.flush();
      await Promise.all(informers.map((informer) => informer.stop()));
    },
  };
}
