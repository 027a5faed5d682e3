// Family concurrency, cluster-wide, the way Celery's `--concurrency` bounded each worker queue:
// every run's Job is born suspended (no pod), and the operator admits the oldest waiting Jobs of
// a family while fewer than the family's concurrency are running. Kueue's mechanism, without a
// second scheduler: the pods are scheduled by Kubernetes as usual once admitted.
//
// Reconciles of different tasks run concurrently, and a Job admitted a moment ago may still look
// suspended in the cache. So admission is serialized per family (an in-process lock: the operator
// runs as one leader), and the count of running Jobs includes the Jobs this process admitted
// that the cache has not caught up with yet.
import type { Family } from '../../crds/schema.ts';
import { objectKey } from '../kube/keys.ts';
import type { ReadonlyStore } from '../kube/store.ts';
import type { Job, Task } from './deps.ts';
import { JOBS_BY_FAMILY } from './indexes.ts';
import { TRIGGER_ANNOTATION } from './labels.ts';

export function isFinished(job: Job): boolean {
  return (job.status?.conditions ?? []).some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
}

/**
 * Whether a waiting Job may take a slot of its family: its task (`owner`) exists and is not being
 * deleted, and is not suspended — run-now Jobs run even for a suspended task.
 */
export function mayTakeSlot(job: Job, owner: Task | undefined): boolean {
  if (!owner || owner.metadata.deletionTimestamp) return false;
  return !owner.spec.suspend || job.spec?.template?.metadata?.annotations?.[TRIGGER_ANNOTATION] === 'Manual';
}

/**
 * When the oldest of these Jobs still waiting for a slot was created (epoch ms); undefined when
 * none waits. Waiting: suspended, unfinished, not being deleted, and allowed to run (`mayRun`) —
 * a Job of a suspended task waits for its task, not for the family, and is left out.
 */
export function oldestWaiting(jobs: readonly Job[], mayRun: (job: Job) => boolean): number | undefined {
  let oldest: number | undefined;
  for (const job of jobs) {
    if (job.spec?.suspend !== true || job.metadata?.deletionTimestamp || isFinished(job) || !mayRun(job)) continue;
    const created = Date.parse(job.metadata?.creationTimestamp ?? '');
    if (!Number.isNaN(created) && (oldest === undefined || created < oldest)) oldest = created;
  }
  return oldest;
}

export interface AdmissionPlan {
  /** Jobs to admit now, oldest first. */
  admit: Job[];
  /** Jobs left waiting, oldest first. */
  waiting: Job[];
  /** Running (admitted, unfinished) Jobs, the ones just admitted excluded. */
  running: number;
}

const byAge = (a: Job, b: Job) =>
  Date.parse(a.metadata?.creationTimestamp ?? '') - Date.parse(b.metadata?.creationTimestamp ?? '') || objectKey(a).localeCompare(objectKey(b));

/**
 * Which of a family's Jobs to admit: the oldest suspended ones, while running < concurrency.
 * `admittedRecently` holds uids admitted by this process that may still look suspended in the
 * cache. A Job `mayRun` refuses (its task suspended or invalid) waits without taking a slot.
 */
export function planAdmission(jobs: readonly Job[], concurrency: number, admittedRecently: ReadonlySet<string>, mayRun: (job: Job) => boolean): AdmissionPlan {
  let running = 0;
  const suspended: Job[] = [];
  for (const job of jobs) {
    if (isFinished(job)) continue;
    const admitted = job.spec?.suspend !== true || admittedRecently.has(job.metadata?.uid ?? '');
    if (admitted) running++;
    else if (!job.metadata?.deletionTimestamp) suspended.push(job);
  }
  suspended.sort(byAge);
  const admit: Job[] = [];
  const waiting: Job[] = [];
  let free = Math.max(0, concurrency - running);
  for (const job of suspended) {
    if (free > 0 && mayRun(job)) {
      admit.push(job);
      free--;
    } else {
      waiting.push(job);
    }
  }
  return { admit, waiting, running };
}

export interface AdmissionDeps {
  jobs: ReadonlyStore<Job>;
  /** Unsuspends the Job (writes.ts JobWrites.admit); undefined when it is gone. */
  admit: (job: Job) => Promise<Job | undefined>;
  now: () => number;
}

export interface AdmissionOutcome extends AdmissionPlan {
  concurrency: number;
  /**
   * Jobs whose admission the apiserver refused (a quota, a webhook, a conflict): they stay
   * waiting, and the Jobs behind them were tried in their place — one refused Job must not hold
   * up its family or fail the reconciles of the family's other tasks.
   */
  failed: { job: Job; error: unknown }[];
}

/** How long a Job admitted by this process counts as running without the cache confirming it. */
const RECENT_ADMISSION_TTL_MS = 10 * 60_000;

export class FamilyAdmission {
  private readonly locks = new Map<Family, Promise<unknown>>();
  /** family → uid → when this process admitted it. */
  private readonly recent = new Map<Family, Map<string, number>>();

  constructor(private readonly deps: AdmissionDeps) {}

  /** Admits what the family has room for. Calls for one family run one after the other. */
  admit(family: Family, concurrency: number, mayRun: (job: Job) => boolean): Promise<AdmissionOutcome> {
    const previous = this.locks.get(family) ?? Promise.resolve();
    const next = previous.then(
      () => this.admitLocked(family, concurrency, mayRun),
      () => this.admitLocked(family, concurrency, mayRun),
    );
    this.locks.set(family, next);
    // Drop the chain once it is idle so the map does not grow with settled promises.
    void next.finally(() => {
      if (this.locks.get(family) === next) this.locks.delete(family);
    }).catch(() => undefined);
    return next;
  }

  private async admitLocked(family: Family, concurrency: number, mayRun: (job: Job) => boolean): Promise<AdmissionOutcome> {
    const jobs = this.deps.jobs.byIndex(JOBS_BY_FAMILY, family);
    let recent = this.recent.get(family);
    if (!recent) this.recent.set(family, (recent = new Map()));
    this.forgetConfirmed(recent, jobs);
    const plan = planAdmission(jobs, concurrency, new Set(recent.keys()), mayRun);
    // The planned Jobs first, then the ones behind them for a slot one of those could not take.
    const slots = plan.admit.length;
    const candidates = [...plan.admit, ...plan.waiting.filter(mayRun)];
    const admitted: Job[] = [];
    const failed: AdmissionOutcome['failed'] = [];
    const tried = new Set<Job>();
    for (const job of candidates) {
      if (admitted.length === slots) break;
      tried.add(job);
      let result: Job | undefined;
      try {
        result = await this.deps.admit(job);
      } catch (error) {
        failed.push({ job, error });
        continue;
      }
      if (!result) continue; // deleted meanwhile: it takes no slot
      recent.set(job.metadata?.uid ?? '', this.deps.now());
      admitted.push(job);
    }
    const waiting = [...plan.admit, ...plan.waiting].filter((job) => !tried.has(job) || failed.some((f) => f.job === job)).sort(byAge);
    return { admit: admitted, waiting, running: plan.running, concurrency, failed };
  }

  /** Forgets admissions the cache now shows (unsuspended, finished or deleted) or that are too old to trust. */
  private forgetConfirmed(recent: Map<string, number>, jobs: readonly Job[]): void {
    if (recent.size === 0) return;
    const byUid = new Map(jobs.map((j) => [j.metadata?.uid ?? '', j]));
    const now = this.deps.now();
    for (const [uid, at] of recent) {
      const job = byUid.get(uid);
      if (!job || job.spec?.suspend !== true || isFinished(job) || now - at > RECENT_ADMISSION_TTL_MS) recent.delete(uid);
    }
  }
}
