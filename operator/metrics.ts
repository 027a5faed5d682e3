// The operator's Prometheus metrics, on a registry of its own (no global state, so tests can make
// as many as they like). seconds_since_last_success is computed at scrape time from the task
// cache: always current, and a deleted task's series disappears with it.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ControllerObserver } from './kube/controller.ts';

const PREFIX = 'bgtask_';

export interface LastSuccess {
  namespace: string;
  name: string;
  task: string;
  /** RFC 3339, from status.lastSuccessfulTime; tasks that never succeeded are not reported. */
  lastSuccessfulTime: string | undefined;
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
  /** Where seconds_since_last_success reads from at scrape time. */
  setLastSuccessSource(source: () => Iterable<LastSuccess>): void;
  /** Where workqueue_depth reads from at scrape time (a standby's queue fills too). */
  setQueueDepthSource(source: () => number): void;
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
    help: 'Duration of finished runs.',
    labelNames: ['task', 'family'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
    registers: [registry],
  });
  const leader = new Gauge({ name: `${PREFIX}leader`, help: '1 while this replica is the leader.', registers: [registry] });
  const apiRequests = new Counter({
    name: `${PREFIX}api_requests_total`,
    help: 'Requests to the Kubernetes API by method and HTTP status (error: no answer).',
    labelNames: ['method', 'code'],
    registers: [registry],
  });
  let lastSuccessSource: () => Iterable<LastSuccess> = () => [];
  new Gauge({
    name: `${PREFIX}seconds_since_last_success`,
    help: 'Seconds since each task last succeeded.',
    labelNames: ['namespace', 'name', 'task'],
    registers: [registry],
    collect() {
      this.reset();
      const t = now();
      for (const s of lastSuccessSource()) {
        if (!s.lastSuccessfulTime) continue;
        const at = Date.parse(s.lastSuccessfulTime);
        if (Number.isNaN(at)) continue;
        this.set({ namespace: s.namespace, name: s.name, task: s.task }, Math.max(0, (t - at) / 1000));
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
      if (run.durationSeconds !== undefined) runDuration.observe({ task: run.task, family: run.family }, run.durationSeconds);
    },
    setLeader(leading) {
      leader.set(leading ? 1 : 0);
    },
    apiRequest(method, code) {
      apiRequests.inc({ method, code: String(code) });
    },
    setLastSuccessSource(source) {
      lastSuccessSource = source;
    },
    setQueueDepthSource(source) {
      queueDepthSource = source;
    },
  };
}
