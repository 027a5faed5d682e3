// The operator, started inside the test process against the kind cluster: the control loop of
// operator/main.ts (operator/control-loop.ts: informers, work queue, reconciler, families
// re-queueing) and its controller workers, plus what the tests need — a runner pod that mounts the
// test plugin from a ConfigMap, a families config set directly (no ConfigMap watch, no leader
// election, no endpoints), and the namespace prepared for runs (runner ServiceAccount and Role).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { loadRegistry } from '../../task-runner/registry.ts';
import { FamiliesConfigHolder } from '../../operator/config/families.ts';
import { createControlLoop } from '../../operator/control-loop.ts';
import { loadKubeConfig } from '../../operator/kube/clients.ts';
import { Controller } from '../../operator/kube/controller.ts';
import { KubeEventRecorder, apiEventSink } from '../../operator/kube/events.ts';
import type { InformerStats } from '../../operator/kube/informer.ts';
import { RawApi } from '../../operator/kube/raw-api.ts';
import { createMetrics } from '../../operator/metrics.ts';
import { ROOT } from '../support/platform.ts';
import { installCrd, kubectl, kubectlJson, kubectlRaw, waitFor } from '../support/kube.ts';
import { applyReportPolicy, deleteReportPolicy } from '../support/runner-report-policy.ts';

export const RUNNER_IMAGE = 'bgtask.local/task-runner:dev';
export const RUNNER_SA = 'bgtask-runner';
export const PLUGIN_FILE = 'operator-test-tasks.mjs';
export const PLUGIN_HOST_PATH = join(ROOT, 'tests/fixtures/plugins', PLUGIN_FILE);
const PLUGIN_CONFIGMAP = 'operator-test-plugins';
const PLUGIN_MOUNT = '/plugins';

/**
 * Installs the CRD (idempotent) and what runs need in `namespace`: the runner's ServiceAccount and
 * Role, the chart's policy on what a run may write of its task's status, the plugin ConfigMap.
 */
export async function prepareNamespace(namespace: string): Promise<void> {
  await installCrd();
  const rbac = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: RUNNER_SA, namespace } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: RUNNER_SA, namespace },
      rules: [{ apiGroups: ['workers.personal-assistant.io'], resources: ['backgroundtasks/status'], verbs: ['get', 'patch'] }],
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
  await applyReportPolicy(namespace, RUNNER_SA);
}

/**
 * Whether the runner's own report of the task's last run was admitted: `bgtask-runner` wrote
 * status.lastRun's outcome (when its report is refused, the operator writes it from the pod's
 * termination message, and the outcome is the operator's).
 */
export async function reportedByRunner(namespace: string, task: string): Promise<boolean> {
  const object = await kubectlJson<{ metadata: { managedFields?: { manager: string; subresource?: string; fieldsV1?: any }[] } }>(['-n', namespace, 'get', 'backgroundtask', task, '--show-managed-fields']);
  return (object.metadata.managedFields ?? []).some((m) => m.manager === 'bgtask-runner' && m.subresource === 'status' && m.fieldsV1?.['f:status']?.['f:lastRun']?.['f:outcome'] !== undefined);
}

/**
 * Deletes a test namespace while the operator still runs, so it lifts its finalizers from the
 * Jobs of the tasks going away (as it must on any task deletion); then stops the operator.
 */
export async function tearDown(namespace: string | undefined, operator: RunningOperator | undefined): Promise<void> {
  if (namespace) {
    await kubectl(['delete', 'namespace', namespace, '--wait=false']);
    await deleteReportPolicy(namespace, RUNNER_SA);
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
  const raw = new RawApi(kubeConfig);
  const events = new KubeEventRecorder({ sink: apiEventSink(raw), log, instance: 'integration-test' });
  const families = new FamiliesConfigHolder({ log, events });
  const familiesConfigMap = (yaml: string) => ({ metadata: { name: 'test-families' }, data: { 'families.yaml': yaml } });
  const loop = createControlLoop({
    raw,
    log,
    namespace: opts.namespace,
    registry: await loadRegistry({ TASK_PLUGINS: PLUGIN_HOST_PATH }),
    events,
    families,
    metrics: createMetrics({ defaultMetrics: false }),
    runner: {
      runnerImage: RUNNER_IMAGE,
      runnerServiceAccount: RUNNER_SA,
      env: [{ name: 'TASK_PLUGINS', value: `${PLUGIN_MOUNT}/${PLUGIN_FILE}` }],
      volumes: [{ name: 'plugins', configMap: { name: PLUGIN_CONFIGMAP } }],
      volumeMounts: [{ name: 'plugins', mountPath: PLUGIN_MOUNT, readOnly: true }],
    },
  });
  if (opts.familiesYaml !== undefined) {
    const initial = loop.applyFamilies(familiesConfigMap(opts.familiesYaml));
    if (!initial.ok) throw initial.error;
  }

  const reconciled = new Map<string, number>();
  const counted = async (key: string) => {
    const result = await loop.reconcile(key);
    reconciled.set(key, (reconciled.get(key) ?? 0) + 1);
    return result;
  };
  const controller = new Controller({ queue: loop.queue, reconcile: counted, workers: opts.workers ?? 4, log });

  for (const informer of loop.informers) informer.start();
  await Promise.all(loop.informers.map((informer) => informer.waitForSync()));
  controller.start();

  return {
    reconciled,
    informerStats: () => Object.fromEntries(loop.informers.map((i, n) => [['backgroundtasks', 'cronjobs', 'jobs', 'pods'][n]!, { ...i.stats }])),
    setFamilies(yaml) {
      const result = loop.applyFamilies(familiesConfigMap(yaml));
      if (!result.ok) throw result.error;
    },
    async stop() {
      await controller.stop(30_000);
      await events.flush();
      await Promise.all(loop.informers.map((informer) => informer.stop()));
      await raw.close();
    },
  };
}
