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
import { statusInChain } from '../kube/errors.ts';
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
 * cache. A Job `mayRun` refuses (its task suspended or invalid) waits without taking a slot. Jobs
 * with the same `exclusive` key (the runs of one task whose concurrencyPolicy forbids overlap)
 * run one at a time: a retry or run-now Job waits while a scheduled run of its task is going, and
 * the other way round, as the CronJob controller cannot see the operator's own Jobs.
 */
export function planAdmission(
  jobs: readonly Job[],
  concurrency: number,
  admittedRecently: ReadonlySet<string>,
  mayRun: (job: Job) => boolean,
  exclusive: (job: Job) => string | undefined = () => undefined,
): AdmissionPlan {
  let running = 0;
  const busy = new Set<string>();
  const suspended: Job[] = [];
  for (const job of jobs) {
    if (isFinished(job)) continue;
    const admitted = job.spec?.suspend !== true || admittedRecently.has(job.metadata?.uid ?? '');
    if (admitted) {
      running++;
      const key = exclusive(job);
      if (key !== undefined) busy.add(key);
    } else if (!job.metadata?.deletionTimestamp) suspended.push(job);
  }
  suspended.sort(byAge);
  const admit: Job[] = [];
  const waiting: Job[] = [];
  let free = Math.max(0, concurrency - running);
  for (const job of suspended) {
    const key = free > 0 && mayRun(job) ? exclusive(job) : undefined;
    if (free > 0 && mayRun(job) && (key === undefined || !busy.has(key))) {
      admit.push(job);
      if (key !== undefined) busy.add(key);
      free--;
    } else {
      waiting.push(job);
    }
  }
  return { admit, waiting, running };
}

/**
 * Whether the apiserver refused this Job for a reason of its own — a quota, an admission webhook,
 * a conflict with a change to it (403, 409, 422) — so the Jobs behind it may still be admitted.
 * Anything else (no answer, 429, 5xx, writes fenced) would refuse them all alike.
 */
function refusedForItself(error: unknown): boolean {
  const code = statusInChain(error);
  return code === 403 || code === 409 || code === 422;
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

  /** Whether this process admitted the Job lately, in any family: the cache may still show it suspended. */
  admittedLately(uid: string | undefined): boolean {
    if (!uid) return false;
    for (const recent of this.recent.values()) if (recent.has(uid)) return true;
    return false;
  }

  /** Admits what the family has room for. Calls for one family run one after the other. */
  admit(family: Family, concurrency: number, mayRun: (job: Job) => boolean, exclusive?: (job: Job) => string | undefined): Promise<AdmissionOutcome> {
    const run = () => this.admitLocked(family, concurrency, mayRun, exclusive);
    const previous = this.locks.get(family) ?? Promise.resolve();
    const next = previous.then(run, run);
    this.locks.set(family, next);
    // Drop the chain once it is idle so the map does not grow with settled promises.
    void next.finally(() => {
      if (this.locks.get(family) === next) this.locks.delete(family);
    }).catch(() => undefined);
    return next;
  }

  private async admitLocked(family: Family, concurrency: number, mayRun: (job: Job) => boolean, exclusive?: (job: Job) => string | undefined): Promise<AdmissionOutcome> {
    const jobs = this.deps.jobs.byIndex(JOBS_BY_FAMILY, family);
    let recent = this.recent.get(family);
    if (!recent) this.recent.set(family, (recent = new Map()));
    this.forgetConfirmed(recent, jobs);
    const admitted: Job[] = [];
    const failed: AdmissionOutcome['failed'] = [];
    // Jobs that took no slot: refused by the apiserver (`failed`), or deleted meanwhile (`gone`).
    const passed = new Set<Job>();
    const gone = new Set<Job>();
    let running: number | undefined;
    // Plan, admit; when one could not take its slot, plan again without it for the Jobs behind —
    // unless the failure was not the Job's own (the apiserver down or overloaded, writes fenced):
    // the Jobs behind would fail the same way, so the rest waits for the next reconcile.
    for (;;) {
      const plan = planAdmission(jobs, concurrency, new Set(recent.keys()), (job) => !passed.has(job) && mayRun(job), exclusive);
      running ??= plan.running;
      const outcome = () => ({ admit: admitted, waiting: plan.waiting.filter((job) => !gone.has(job)), running: running!, concurrency, failed });
      let slotLeft = false;
      for (const [i, job] of plan.admit.entries()) {
        let result: Job | undefined;
        try {
          result = await this.deps.admit(job);
        } catch (error) {
          failed.push({ job, error });
          passed.add(job);
          if (!refusedForItself(error)) {
            plan.waiting.push(...plan.admit.slice(i));
            plan.waiting.sort(byAge);
            return outcome();
          }
          slotLeft = true;
          continue;
        }
        if (!result) {
          passed.add(job);
          gone.add(job);
          slotLeft = true;
          continue;
        }
        recent.set(job.metadata?.uid ?? '', this.deps.now());
        admitted.push(job);
      }
      if (!slotLeft) return outcome();
    }
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
