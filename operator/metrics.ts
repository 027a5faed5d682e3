// The operator's Prometheus metrics, on a registry of its own (no global state, so tests can make
// as many as they like). The per-task gauges (seconds since last success, consecutive failures,
// schedule interval) and the queue gauges are computed at scrape time from the caches: always
// current, and a deleted task's series disappears with it.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { mayTakeSlot, oldestWaiting } from './controller/admission.ts';
import type { Job, Task } from './controller/deps.ts';
import { JOBS_BY_FAMILY } from './controller/indexes.ts';
import { TASK_NAME_LABEL } from './controller/labels.ts';
import { ScheduleIntervals } from './controller/schedule.ts';
import type { CrdState } from './crd-check.ts';
import type { ControllerObserver } from './kube/controller.ts';
import type { ReadonlyStore } from './kube/store.ts';
import type { KubeObject } from './kube/types.ts';

const PREFIX = 'bgtask_';

/** What the per-task gauges read of one BackgroundTask. */
export interface TaskSnapshot {
  namespace: string;
  name: string;
  task: string;
  /** The task's family (the prefix of spec.task). */
  family: string;
  /** RFC 3339, from status.lastSuccessfulTime; tasks that never succeeded are not reported. */
  lastSuccessfulTime: string | undefined;
  /** RFC 3339, from metadata.creationTimestamp: how long a task that never succeeded has gone without. */
  createdAt: string | undefined;
  /** status.consecutiveFailures; a task without it (never reconciled) is not reported. */
  consecutiveFailures: number | undefined;
  /** spec.schedule in spec.timeZone; undefined while the task is suspended (no interval is reported). */
  schedule: { expression: string; timeZone: string | undefined } | undefined;
}

/** One family's runs waiting for a slot: when the oldest of them was created (epoch ms), if any. */
export interface FamilyQueue {
  family: string;
  oldestWaitingSince: number | undefined;
}

export interface RunObservation {
  task: string;
  family: string;
  outcome: string;
  durationSeconds?: number;
}

export interface OperatorMetrics extends ControllerObserver {
  readonly registry: Registry;
  /** A finished run (the reconciler calls this once per run it sees complete). */
  observeRun(run: RunObservation): void;
  setLeader(leading: boolean): void;
  /** An API request's outcome (RawApi's observe hook): a steady state shows no write verbs growing. */
  apiRequest(method: string, code: number | 'error'): void;
  /** Where the per-task gauges (seconds_since_last_success, consecutive_failures, schedule_interval_seconds) read from at scrape time. */
  setTaskSource(source: () => Iterable<TaskSnapshot>): void;
  /** Where oldest_queued_run_seconds reads from at scrape time: one entry per configured family. */
  setFamilyQueueSource(source: () => Iterable<FamilyQueue>): void;
  /** Where workqueue_depth reads from at scrape time (a standby's queue fills too). */
  setQueueDepthSource(source: () => number): void;
  /** Whether the served CRD is the one this build expects (operator/crd-check.ts). */
  setCrdState(state: CrdState['state']): void;
}

export function createMetrics(opts: { now?: () => number; defaultMetrics?: boolean } = {}): OperatorMetrics {
  const registry = new Registry();
  const now = opts.now ?? Date.now;
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: PREFIX });

  const reconcileTotal = new Counter({ name: `${PREFIX}reconcile_total`, help: 'Reconciles by result (success, requeue, error).', labelNames: ['result'], registers: [registry] });
  const reconcileErrors = new Counter({ name: `${PREFIX}reconcile_errors_total`, help: 'Reconciles that failed and were requeued with backoff.', registers: [registry] });
  const reconcileDuration = new Histogram({
    name: `${PREFIX}reconcile_duration_seconds`,
    help: 'Time one reconcile took.',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  let queueDepthSource: () => number = () => 0;
  new Gauge({
    name: `${PREFIX}workqueue_depth`,
    help: 'Keys waiting in the work queue.',
    registers: [registry],
    collect() {
      this.set(queueDepthSource());
    },
  });
  const runsTotal = new Counter({ name: `${PREFIX}runs_total`, help: 'Finished runs by task, family and outcome.', labelNames: ['task', 'family', 'outcome'], registers: [registry] });
  const runDuration = new Histogram({
    name: `${PREFIX}run_duration_seconds`,
    // By outcome too: a cancelled or timed-out run's duration is where it was cut short, and
    // mixed into the successes' it would skew their quantiles.
    help: 'Duration of finished runs by task, family and outcome.',
    labelNames: ['task', 'family', 'outcome'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
    registers: [registry],
  });
  const leader = new Gauge({ name: `${PREFIX}leader`, help: '1 while this replica is the leader.', registers: [registry] });
  const crdState = new Gauge({
    name: `${PREFIX}crd_schema_state`,
    help: 'The served BackgroundTask CRD against the one this operator was built with: 1 on the state that holds (current, outdated, or unknown when it could not be read).',
    labelNames: ['state'],
    registers: [registry],
  });
  const apiRequests = new Counter({
    name: `${PREFIX}api_requests_total`,
    help: 'Requests to the Kubernetes API by method and HTTP status (error: no answer).',
    labelNames: ['method', 'code'],
    registers: [registry],
  });
  let taskSource: () => Iterable<TaskSnapshot> = () => [];
  /** A per-task gauge of the seconds since a time of the task; tasks without that time are not reported. */
  const secondsSince = (name: string, help: string, time: (s: TaskSnapshot) => string | undefined) =>
    new Gauge({
      name: `${PREFIX}${name}`,
      help,
      labelNames: ['namespace', 'name', 'task'],
      registers: [registry],
      collect() {
        this.reset();
        const t = now();
        for (const s of taskSource()) {
          const at = Date.parse(time(s) ?? '');
          if (!Number.isNaN(at)) this.set({ namespace: s.namespace, name: s.name, task: s.task }, Math.max(0, (t - at) / 1000));
        }
      },
    });
  secondsSince('seconds_since_last_success', 'Seconds since each task last succeeded.', (s) => s.lastSuccessfulTime);
  // With seconds_since_last_success absent, the age says how long a task has gone without any
  // success: the never-succeeded alert needs it, since an absent series never crosses a threshold.
  secondsSince('task_age_seconds', 'Seconds since each task was created (metadata.creationTimestamp).', (s) => s.createdAt);
  new Gauge({
    name: `${PREFIX}consecutive_failures`,
    help: 'Runs of each task that failed in a row since its last success (status.consecutiveFailures).',
    labelNames: ['namespace', 'name', 'task', 'family'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of taskSource()) {
        if (s.consecutiveFailures === undefined) continue;
        this.set({ namespace: s.namespace, name: s.name, task: s.task, family: s.family }, s.consecutiveFailures);
      }
    },
  });
  const intervals = new ScheduleIntervals();
  new Gauge({
    name: `${PREFIX}schedule_interval_seconds`,
    help:
      'Expected seconds between scheduled runs of each task: the longest gap between consecutive scheduled times over the coming five weeks, ' +
      'in the task\'s time zone (a weekday schedule reports its weekend). Suspended tasks and invalid schedules are not reported.',
    labelNames: ['namespace', 'name', 'task', 'family'],
    registers: [registry],
    collect() {
      this.reset();
      const t = now();
      intervals.beginRound(t);
      for (const s of taskSource()) {
        if (!s.schedule) continue;
        const seconds = intervals.get(s.schedule.expression, s.schedule.timeZone, t);
        if (seconds !== undefined) this.set({ namespace: s.namespace, name: s.name, task: s.task, family: s.family }, seconds);
      }
    },
  });
  let familyQueueSource: () => Iterable<FamilyQueue> = () => [];
  new Gauge({
    name: `${PREFIX}oldest_queued_run_seconds`,
    help: 'Age of the oldest run waiting for a slot of its family (a Job created suspended, not admitted yet); 0 when none waits.',
    labelNames: ['family'],
    registers: [registry],
    collect() {
      this.reset();
      const t = now();
      for (const q of familyQueueSource()) {
        this.set({ family: q.family }, q.oldestWaitingSince === undefined ? 0 : Math.max(0, (t - q.oldestWaitingSince) / 1000));
      }
    },
  });

  return {
    registry,
    reconciled(result, seconds) {
      reconcileTotal.inc({ result });
      if (result === 'error') reconcileErrors.inc();
      reconcileDuration.observe(seconds);
    },
    observeRun(run) {
      runsTotal.inc({ task: run.task, family: run.family, outcome: run.outcome });
      if (run.durationSeconds !== undefined) runDuration.observe({ task: run.task, family: run.family, outcome: run.outcome }, run.durationSeconds);
    },
    setLeader(leading) {
      leader.set(leading ? 1 : 0);
    },
    setCrdState(state) {
      crdState.reset();
      crdState.set({ state }, 1);
    },
    apiRequest(method, code) {
      apiRequests.inc({ method, code: String(code) });
    },
    setTaskSource(source) {
      taskSource = source;
    },
    setFamilyQueueSource(source) {
      familyQueueSource = source;
    },
    setQueueDepthSource(source) {
      queueDepthSource = source;
    },
  };
}

/** What the per-task gauges read of a cached BackgroundTask. */
export function taskSnapshot(t: Task): TaskSnapshot {
  return {
    namespace: t.metadata.namespace ?? '',
    name: t.metadata.name ?? '',
    task: t.spec.task,
    family: t.spec.task.slice(0, Math.max(0, t.spec.task.indexOf('.'))),
    lastSuccessfulTime: t.status?.lastSuccessfulTime,
    createdAt: t.metadata.creationTimestamp,
    consecutiveFailures: t.status?.consecutiveFailures,
    schedule: t.spec.suspend ? undefined : { expression: t.spec.schedule, timeZone: t.spec.timeZone },
  };
}

/**
 * The oldest waiting run of each family, from the Job cache (built with JOB_INDEXERS) and the task
 * cache: the Jobs admission would let in once a slot frees (admission.ts), not those of suspended
 * or deleted tasks.
 */
export function familyQueues(families: Iterable<string>, jobs: ReadonlyStore<Job>, tasks: ReadonlyStore<Task & KubeObject>): FamilyQueue[] {
  const ownerOf = (job: Job): (Task & KubeObject) | undefined => {
    const name = job.metadata?.labels?.[TASK_NAME_LABEL];
    const namespace = job.metadata?.namespace;
    return name && namespace ? tasks.get(namespace, name) : undefined;
  };
  return [...families].map((family) => ({
    family,
    oldestWaitingSince: oldestWaiting(jobs.byIndex(JOBS_BY_FAMILY, family), (job) => mayTakeSlot(job, ownerOf(job))),
  }));
}
