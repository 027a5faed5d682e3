// The control loop without its process around it: the caches (informers of BackgroundTasks and of
// the operator's own CronJobs, Jobs and Pods), the de-duplicating work queue their events feed,
// the reconciler reading those caches, and the families config that re-queues the tasks of a
// family it changes. operator/main.ts puts leader election, endpoints and shutdown around it; the
// integration tests start it in their own process, so they exercise this very wiring.
import type { Logger } from 'pino';
import type { ConfigMapLike, FamiliesConfigHolder, FamiliesUpdate } from './config/families.ts';
import type { CronJob, Job, Pod, RunnerSettings, Task, TaskCatalog } from './controller/deps.ts';
import { routeEvents } from './controller/event-routing.ts';
import { WriteExpectations } from './controller/expectations.ts';
import { JOB_INDEXERS, POD_INDEXERS, TASK_INDEXERS, TASKS_BY_FAMILY } from './controller/indexes.ts';
import { createReconciler } from './controller/reconcile.ts';
import { FIELD_MANAGER } from './kube/apply.ts';
import type { Reconcile } from './kube/controller.ts';
import type { KubeEventRecorder } from './kube/events.ts';
import { Informer, type InformerHandle } from './kube/informer.ts';
import { MANAGED_SELECTOR, objectKey } from './kube/keys.ts';
import type { RawApi } from './kube/raw-api.ts';
import { BACKGROUND_TASKS, CRON_JOBS, JOBS, PODS } from './kube/resources.ts';
import { OWNER_UID_INDEX, ownerUidIndex } from './kube/store.ts';
import { compact, compactCronJob, slimJob, slimPod } from './kube/transforms.ts';
import type { KubeObject } from './kube/types.ts';
import { WorkQueue } from './kube/workqueue.ts';
import { familyQueues, taskSnapshot, type OperatorMetrics } from './metrics.ts';

/** How long the work queue must have been idle before held Events are written. */
const EVENTS_AFTER_IDLE_MS = 1_000;

export interface ControlLoopOptions {
  raw: RawApi;
  log: Logger;
  /** The one namespace watched, or every namespace when unset. */
  namespace: string | undefined;
  /** An informer whose watch is silent this long restarts it (informer.ts's default when unset). */
  stallTimeoutMs?: number;
  registry: TaskCatalog;
  events: KubeEventRecorder;
  families: FamiliesConfigHolder;
  metrics: OperatorMetrics;
  /** How every run's pod is made (main.ts's runnerSettings). */
  runner: RunnerSettings;
}

export interface ControlLoop {
  tasks: Informer<Task & KubeObject>;
  cronJobs: Informer<CronJob>;
  jobs: Informer<Job>;
  pods: Informer<Pod>;
  /** The four above, for starting, syncing, health and stopping. */
  informers: InformerHandle[];
  queue: WorkQueue;
  /** Level-triggered reconcile of one task key, for the controller's workers. */
  reconcile: Reconcile;
  /** Puts a version of the families ConfigMap in force (undefined: deleted); the tasks of every family it changed are reconciled again. */
  applyFamilies(configMap: ConfigMapLike | undefined): FamiliesUpdate;
}

export function createControlLoop(opts: ControlLoopOptions): ControlLoop {
  const { raw, log, namespace, families, metrics } = opts;
  // Jobs and Pods only the operator's own (label selector).
  const common = { raw, log, namespace, ...(opts.stallTimeoutMs !== undefined ? { stallTimeoutMs: opts.stallTimeoutMs } : {}) };
  const tasks = new Informer<Task & KubeObject>({ ...common, resource: BACKGROUND_TASKS, indexers: TASK_INDEXERS, transform: compact });
  const cronJobs = new Informer<CronJob>({ ...common, resource: CRON_JOBS, transform: compactCronJob, labelSelector: MANAGED_SELECTOR, indexers: { [OWNER_UID_INDEX]: ownerUidIndex } });
  const jobs = new Informer<Job>({ ...common, resource: JOBS, labelSelector: MANAGED_SELECTOR, indexers: JOB_INDEXERS, transform: slimJob });
  const pods = new Informer<Pod>({ ...common, resource: PODS, labelSelector: MANAGED_SELECTOR, indexers: POD_INDEXERS, transform: slimPod });

  // Events → keys of the BackgroundTasks to reconcile.
  const queue = new WorkQueue();
  const expectations = new WriteExpectations();
  routeEvents({ tasks, cronJobs, jobs, pods, queue, expectations });

  // Events wait while reconciles are under way, and until none has run for a moment: in a
  // burst the CronJobs and statuses go first, and the Events follow when it ends (events.ts).
  opts.events.holdWhile(() => queue.idleForMs() < EVENTS_AFTER_IDLE_MS);
  metrics.setQueueDepthSource(() => queue.len());
  metrics.setTaskSource(function* () {
    for (const t of tasks.store.list()) yield taskSnapshot(t);
  });
  metrics.setFamilyQueueSource(() => familyQueues(Object.keys(families.current()), jobs.store, tasks.store));

  const reconcile = createReconciler({
    clients: { raw },
    caches: { tasks: tasks.store, cronJobs: cronJobs.store, jobs: jobs.store, pods: pods.store },
    families: () => families.current(),
    events: opts.events,
    metrics,
    clock: () => new Date(),
    log: log.child({ component: 'reconciler' }),
    settings: { namespace, fieldManager: FIELD_MANAGER, ...opts.runner },
    registry: opts.registry,
    expectations,
  });

  return {
    tasks,
    cronJobs,
    jobs,
    pods,
    informers: [tasks, cronJobs, jobs, pods],
    queue,
    reconcile,
    applyFamilies(configMap) {
      const result = families.update(configMap);
      if (result.ok) for (const family of result.changed) for (const t of tasks.store.byIndex(TASKS_BY_FAMILY, family)) queue.add(objectKey(t));
      return result;
    },
  };
}
