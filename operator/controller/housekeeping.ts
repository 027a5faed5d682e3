// Chores on a task's Jobs:
//   - lifting the run-accounting finalizer of a Job being deleted, once its run is counted (one
//     deleted before it finished is counted as Cancelled) and its pods have stopped — admission
//     counts the Job's slot as long as it is in the cache; a status that cannot be stored (an
//     outdated CRD refusing it, say) holds it at most RELEASE_UNCOUNTED_AFTER_MS;
//   - a Job deleted in the background (by the CronJob controller, the garbage collector, a user)
//     before it finished keeps its pods running until it is gone, and the finalizer keeps it:
//     deleting it again in the foreground has the garbage collector stop its pods first;
//   - deleting the operator's own finished Jobs (run-now and retries, owned by the task, not the
//     CronJob) beyond spec.history, as the CronJob controller does for the Jobs it made.
import type { LastRun } from '../../crds/schema.ts';
import type { Run } from './runs.ts';

export interface HistoryLimits {
  successfulRuns: number;
  failedRuns: number;
}

export interface Housekeeping {
  release: Run[];
  /** Being deleted with running pods, and not in the foreground: to be deleted in the foreground. */
  stopPods: Run[];
  remove: Run[];
}

/** The garbage collector's finalizer of an object deleted in the foreground. */
export const FOREGROUND_DELETION = 'foregroundDeletion';

/**
 * Chores of Jobs being deleted: which finalizers to lift, and which Jobs' pods to stop first.
 * `recorded` is status.lastRun as read from the cache: a run it tells of with another outcome than
 * the run's (the runner's Interrupted of a run whose Job was deleted: Cancelled) keeps its Job
 * until the status says so, or with the Job gone the stored Interrupted would be retried.
 */
export function planDeletions(runs: readonly Run[], countedThrough: number, recorded?: LastRun, now = Number.NEGATIVE_INFINITY): Pick<Housekeeping, 'release' | 'stopPods'> {
  const deleting = runs.filter((r) => r.hasFinalizer && r.deleting);
  const told = (r: Run) => !r.result || recorded?.runId !== r.id || recorded.outcome === r.result.outcome;
  const counted = (r: Run) => (!r.result || Date.parse(r.result.finishedAt) <= countedThrough) && told(r);
  return {
    release: deleting.filter((r) => !r.podsLive && (counted(r) || releaseUncountedAt(r) <= now)),
    stopPods: deleting.filter((r) => r.podsLive && !r.job.metadata?.finalizers?.includes(FOREGROUND_DELETION)),
  };
}

/**
 * How long a deleted Job whose pods have stopped waits for its run to be counted: a finalizer held
 * for ever would keep its family's slot for ever. Released uncounted after that (a warning).
 */
export const RELEASE_UNCOUNTED_AFTER_MS = 10 * 60_000;

/** When a deleted Job is let go whether or not its run was counted. */
export function releaseUncountedAt(run: Run): number {
  return Date.parse(run.job.metadata?.deletionTimestamp ?? '') + RELEASE_UNCOUNTED_AFTER_MS;
}

/**
 * `awaitingRetry` names a failed run a retry may still copy its arguments from: its Job stays
 * whatever the limits say.
 * `countedThrough` is the watermark of the status as read from the cache — not of a status just
 * computed — so a finalizer is lifted only once the count that includes the run is stored.
 */
export function planHousekeeping(runs: readonly Run[], taskUid: string, limits: HistoryLimits, countedThrough: number, awaitingRetry?: string, recorded?: LastRun, now?: number): Housekeeping {

  const ownFinished = runs
    .filter((r) => r.result && !r.deleting && r.job.metadata?.ownerReferences?.some((o) => o.uid === taskUid))
    .sort((a, b) => Date.parse(b.result!.finishedAt) - Date.parse(a.result!.finishedAt) || b.id.localeCompare(a.id));
  const succeeded = ownFinished.filter((r) => r.result!.outcome === 'Succeeded');
  const failed = ownFinished.filter((r) => r.result!.outcome !== 'Succeeded');
  const remove = [...succeeded.slice(limits.successfulRuns), ...failed.slice(limits.failedRuns)].filter((r) => r.id !== awaitingRetry);
  return { ...planDeletions(runs, countedThrough, recorded, now), remove };
}
