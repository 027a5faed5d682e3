// Two chores on a task's finished Jobs:
//   - lifting the run-accounting finalizer of a Job being deleted, once its run is counted (or
//     never will be: it was deleted before it finished);
//   - deleting the operator's own finished Jobs (run-now and retries, owned by the task, not the
//     CronJob) beyond spec.history, as the CronJob controller does for the Jobs it made.
import type { Run } from './runs.ts';

export interface HistoryLimits {
  successfulRuns: number;
  failedRuns: number;
}

export interface Housekeeping {
  release: Run[];
  remove: Run[];
}

/**
 * `awaitingRetry` names a failed run a retry may still copy its arguments from: its Job stays
 * whatever the limits say.
 * `countedThrough` is the watermark of the status as read from the cache — not of a status just
 * computed — so a finalizer is lifted only once the count that includes the run is stored.
 */
export function planHousekeeping(runs: readonly Run[], taskUid: string, limits: HistoryLimits, countedThrough: number, awaitingRetry?: string): Housekeeping {
  const release = runs.filter((r) => r.hasFinalizer && r.deleting && (!r.result || Date.parse(r.result.finishedAt) <= countedThrough));

  const ownFinished = runs
    .filter((r) => r.result && !r.deleting && r.job.metadata?.ownerReferences?.some((o) => o.uid === taskUid))
    .sort((a, b) => Date.parse(b.result!.finishedAt) - Date.parse(a.result!.finishedAt) || b.id.localeCompare(a.id));
  const succeeded = ownFinished.filter((r) => r.result!.outcome === 'Succeeded');
  const failed = ownFinished.filter((r) => r.result!.outcome !== 'Succeeded');
  const remove = [...succeeded.slice(limits.successfulRuns), ...failed.slice(limits.failedRuns)].filter((r) => r.id !== awaitingRetry);
  return { release, remove };
}
