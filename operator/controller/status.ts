// The task's status, rebuilt from the world on every reconcile: the CronJob, the runs (Jobs and
// their pods) and the runner's report. Only the counters carry history, because Jobs do not
// last (the CronJob's history limits delete them): finished runs are folded into the counters
// once, in order of the time they finished, and the newest fold's time is the watermark — the
// latest of lastSuccessfulTime, lastFailureTime and lastCancellationTime. A run that finished at or before it has
// been counted; one after it has not. The same world and status in give the same status out.
import type { BackgroundTaskStatus, Condition, Family, LastRun } from '../../crds/schema.ts';
import { buildConditions, type ConditionUpdate } from './conditions.ts';
import type { CronJob, Task } from './deps.ts';
import { newestRun, recordedLastRun, type Run } from './runs.ts';

/**
 * Runs are counted only once they have been finished this long. Jobs of one task finishing
 * within the same second may reach the cache in either order; waiting lets the watermark pass
 * them together, so none is left behind it uncounted.
 */
export const FOLD_SETTLE_MS = 5_000;

export const CONDITION_READY = 'Ready';
export const CONDITION_LAST_RUN_SUCCEEDED = 'LastRunSucceeded';
export const CONDITION_QUEUED = 'Queued';

/** Why the task is not Ready, when it is not. */
export type NotReady = { reason: 'InvalidSpec' | 'CronJobFailed'; message: string };

export interface StatusInput {
  task: Task;
  family?: Family | undefined;
  cronJobName: string;
  cronJob?: CronJob | undefined;
  runs: readonly Run[];
  notReady?: NotReady | undefined;
  nextScheduleTime?: number | undefined;
  /** For each queued run: why it waits (its family's slots, or a run of its own still going). */
  queuedMessage?: string | undefined;
  /** The queued runs wait for this run of the task (concurrencyPolicy Forbid), not for a slot. */
  waitingFor?: string | undefined;
  now: Date;
}

export interface StatusResult {
  status: BackgroundTaskStatus;
  /** Runs counted by this status for the first time, in the order they finished. */
  folded: Run[];
  /** When a finished run becomes countable (its settle time ends), if one is waiting. */
  foldAt?: number;
}

const isSuccess = (run: Run) => run.result?.outcome === 'Succeeded';

/** The counting watermark of a status: the time of the newest run it has counted. */
export function countedThrough(status: BackgroundTaskStatus | undefined): number {
  const times = [status?.lastSuccessfulTime, status?.lastFailureTime, status?.lastCancellationTime].filter((t): t is string => t !== undefined).map(Date.parse);
  return times.length > 0 ? Math.max(...times) : Number.NEGATIVE_INFINITY;
}

function toIso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}

/** Runs that finished after the watermark and before now − settle, in the order they finished. */
export function runsToFold(runs: readonly Run[], watermark: number, now: number): { fold: Run[]; foldAt?: number } {
  const finishedAfter = runs.filter((r) => r.result && Date.parse(r.result.finishedAt) > watermark);
  const fold = finishedAfter
    .filter((r) => Date.parse(r.result!.finishedAt) + FOLD_SETTLE_MS <= now)
    .sort((a, b) => Date.parse(a.result!.finishedAt) - Date.parse(b.result!.finishedAt) || a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  const waiting = finishedAfter.filter((r) => !fold.includes(r)).map((r) => Date.parse(r.result!.finishedAt) + FOLD_SETTLE_MS);
  return waiting.length > 0 ? { fold, foldAt: Math.min(...waiting) } : { fold };
}

export function buildStatus(input: StatusInput): StatusResult {
  const { task, runs, now } = input;
  const previous = task.status;
  const watermark = countedThrough(previous);
  const { fold, foldAt } = runsToFold(runs, watermark, now.getTime());

  let succeeded = previous?.succeeded ?? 0;
  let failed = previous?.failed ?? 0;
  let consecutiveFailures = previous?.consecutiveFailures ?? 0;
  let lastSuccessfulTime = previous?.lastSuccessfulTime;
  let lastFailureTime = previous?.lastFailureTime;
  let cancelled = previous?.cancelled ?? 0;
  let lastCancellationTime = previous?.lastCancellationTime;
  for (const run of fold) {
    const at = run.result!.finishedAt;
    if (isSuccess(run)) {
      succeeded++;
      consecutiveFailures = 0;
      lastSuccessfulTime = toIso(Date.parse(at));
    } else if (run.result!.outcome === 'Cancelled') {
      // Stopped on purpose: no failure, and the failures in a row go on as they were.
      cancelled++;
      lastCancellationTime = toIso(Date.parse(at));
    } else {
      failed++;
      consecutiveFailures++;
      lastFailureTime = toIso(Date.parse(at));
    }
  }

  const { lastRun } = newestRun(runs, recordedLastRun(task));
  const active = runs
    .filter((r) => !r.result && !r.deleting && (r.admitted || r.queued))
    .map((r) => ({ name: r.id, runId: r.id, queued: r.queued }));

  const conditions: ConditionUpdate[] = [readyCondition(input)];
  // While the newest run is going, the condition keeps telling of the newest finished one.
  const lastRunCondition = lastRunSucceededCondition(lastRun) ?? keptCondition(previous?.conditions, CONDITION_LAST_RUN_SUCCEEDED);
  if (lastRunCondition) conditions.push(lastRunCondition);
  conditions.push(queuedCondition(runs, input.queuedMessage, input.waitingFor, task.spec.suspend === true));

  const status: BackgroundTaskStatus = {
    cronJobName: input.cronJobName,
    conditions: buildConditions(previous?.conditions as Condition[] | undefined, conditions, task.metadata.generation, now),
    active,
    succeeded,
    failed,
    consecutiveFailures,
  };
  if (task.metadata.generation !== undefined) status.observedGeneration = task.metadata.generation;
  if (input.family) status.family = input.family;
  const lastScheduleTime = input.cronJob?.status?.lastScheduleTime;
  if (lastScheduleTime) status.lastScheduleTime = lastScheduleTime;
  if (input.nextScheduleTime !== undefined) status.nextScheduleTime = toIso(input.nextScheduleTime);
  if (lastSuccessfulTime) status.lastSuccessfulTime = lastSuccessfulTime;
  if (lastFailureTime) status.lastFailureTime = lastFailureTime;
  if (cancelled > 0) status.cancelled = cancelled;
  if (lastCancellationTime) status.lastCancellationTime = lastCancellationTime;
  if (lastRun) status.lastRun = lastRun;
  return foldAt === undefined ? { status, folded: fold } : { status, folded: fold, foldAt };
}

function readyCondition(input: StatusInput): ConditionUpdate {
  if (input.notReady) return { type: CONDITION_READY, status: 'False', reason: input.notReady.reason, message: input.notReady.message };
  const schedule = input.task.spec.suspend ? 'suspended: no new runs are scheduled' : `scheduled by CronJob ${input.cronJobName}`;
  return { type: CONDITION_READY, status: 'True', reason: 'Reconciled', message: schedule };
}

function lastRunSucceededCondition(lastRun: LastRun | undefined): ConditionUpdate | undefined {
  if (!lastRun?.outcome) return undefined;
  const what = `run ${lastRun.runId} (${lastRun.trigger}, attempt ${lastRun.attempt})`;
  if (lastRun.outcome === 'Succeeded') {
    return { type: CONDITION_LAST_RUN_SUCCEEDED, status: 'True', reason: 'Succeeded', message: `${what} succeeded${lastRun.message && lastRun.message !== 'succeeded' ? `: ${lastRun.message}` : ''}` };
  }
  return { type: CONDITION_LAST_RUN_SUCCEEDED, status: 'False', reason: lastRun.outcome, message: `${what} ended ${lastRun.outcome}${lastRun.message ? `: ${lastRun.message}` : ''}` };
}

/** A condition of the previous status, unchanged (its lastTransitionTime stays with it). */
function keptCondition(previous: readonly Condition[] | undefined, type: string): ConditionUpdate | undefined {
  const before = previous?.find((c) => c.type === type);
  return before && { type, status: before.status, reason: before.reason, message: before.message };
}

function queuedCondition(runs: readonly Run[], message: string | undefined, waitingFor: string | undefined, suspended: boolean): ConditionUpdate {
  const queued = runs.filter((r) => r.queued);
  if (queued.length === 0) return { type: CONDITION_QUEUED, status: 'False', reason: 'NoQueuedRuns', message: 'no run is waiting for a slot' };
  // A suspended task's scheduled runs and retries wait for it to be resumed, not for a slot
  // (admission.ts mayTakeSlot); its run-now runs still take one.
  const held = suspended ? queued.filter((r) => r.trigger !== 'Manual') : [];
  const forSlot = queued.filter((r) => !held.includes(r));
  const wait = (rs: readonly Run[]) => `${rs.map((r) => r.id).join(', ')} ${rs.length === 1 ? 'waits' : 'wait'}`;
  const heldMessage = `${wait(held)} for the task to be resumed (spec.suspend is true)`;
  if (forSlot.length === 0) return { type: CONDITION_QUEUED, status: 'True', reason: 'WaitingForResume', message: heldMessage };
  const also = held.length > 0 ? `; ${heldMessage}` : '';
  if (waitingFor) {
    return { type: CONDITION_QUEUED, status: 'True', reason: 'WaitingForRunningRun', message: `${wait(forSlot)} for run ${waitingFor} to finish (concurrencyPolicy Forbid)${also}` };
  }
  return { type: CONDITION_QUEUED, status: 'True', reason: 'WaitingForFamilySlot', message: `${wait(forSlot)} for a slot${message ? `: ${message}` : ''}${also}` };
}
