// Retries of failed runs, as Celery's `self.retry(countdown=…, max_retries=…)` did it: a failed
// run is run again after a delay, as a new Job with trigger Retry and the next attempt number,
// until the task's maxRetries. Kubernetes' own pod backoff is off (backoffLimit 0): it would
// restart at once, with no attempt number and no delay policy.
//
// Retried: Failed, TimedOut, OOMKilled, and Interrupted — a run stopped by SIGTERM (a node
// drained, the pod evicted) did not finish its work through no fault of its input, like a
// Celery task lost with its worker under acks_late. Never retried: InvalidInput (exit 2), which
// no retry can fix, and Succeeded.
import { createHash } from 'node:crypto';
import type { LastRun, RunOutcome } from '../../crds/schema.ts';
import type { Task, TaskMetadata } from './deps.ts';
import { retryJobName } from './names.ts';
import type { Run } from './runs.ts';

export const RETRYABLE_OUTCOMES: ReadonlySet<RunOutcome> = new Set(['Failed', 'TimedOut', 'OOMKilled', 'Interrupted']);

/** The cap of an exponential delay when spec.retry.maxDelaySeconds is unset: one hour. */
export const DEFAULT_MAX_DELAY_SECONDS = 3600;

export interface RetryPolicy {
  maxRetries: number;
  delaySeconds: number;
  backoff: 'Fixed' | 'Exponential';
  maxDelaySeconds: number;
}

/** spec.retry over the task's defaults, field by field. */
export function retryPolicy(task: Task, meta: TaskMetadata): RetryPolicy {
  const own = task.spec.retry ?? {};
  const delaySeconds = own.delaySeconds ?? meta.defaults.retry.delaySeconds;
  return {
    maxRetries: own.maxRetries ?? meta.defaults.retry.maxRetries,
    delaySeconds,
    backoff: own.backoff ?? meta.defaults.retry.backoff,
    maxDelaySeconds: Math.max(own.maxDelaySeconds ?? DEFAULT_MAX_DELAY_SECONDS, delaySeconds),
  };
}

/** A number in [0, 1) from a string: the same run always gets the same jitter, so a re-reconcile computes the same due time. */
export function unitHash(seed: string): number {
  return createHash('sha256').update(seed).digest().readUInt32BE(0) / 2 ** 32;
}

/**
 * Seconds to wait before `attempt` (2 for the first retry). Fixed: delaySeconds. Exponential:
 * delaySeconds · 2^(attempt−2), capped at maxDelaySeconds, then "equal jitter" — a point in
 * [d/2, d) chosen by the failed run's id — so runs that failed together do not retry together.
 */
export function retryDelaySeconds(policy: RetryPolicy, attempt: number, jitterSeed: string): number {
  if (policy.backoff === 'Fixed') return policy.delaySeconds;
  const exponential = Math.min(policy.maxDelaySeconds, policy.delaySeconds * 2 ** Math.max(0, attempt - 2));
  return Math.max(1, Math.floor(exponential / 2 + (exponential / 2) * unitHash(jitterSeed)));
}

export type RetryDecision =
  | { kind: 'none'; reason: string }
  | { kind: 'wait'; failedRunId: string; attempt: number; dueAt: number }
  | { kind: 'start'; failedRunId: string; attempt: number; name: string; args?: string[] };

export interface RetryInput {
  task: Task & { metadata: { uid?: string; name?: string } };
  policy: RetryPolicy;
  /** The task's newest run, as status.lastRun describes it, and its Job if it still exists. */
  newest: { run?: Run | undefined; lastRun?: LastRun | undefined };
  /** Every run of the task (to see whether a newer one already superseded the failed one). */
  runs: readonly Run[];
  now: number;
}

/**
 * Whether the task's newest run should be retried, and when. Only the newest run is ever retried:
 * once its retry exists, the retry is the newest, so a retry is never started twice — even by an
 * operator that restarted, as the retry Job's name is a function of the failed run and attempt.
 */
export function decideRetry(input: RetryInput): RetryDecision {
  const { task, policy, newest, runs, now } = input;
  const failed = newest.lastRun;
  if (task.spec.suspend) return { kind: 'none', reason: 'the task is suspended' };
  if (!failed?.outcome) return { kind: 'none', reason: 'no finished run' };
  if (!RETRYABLE_OUTCOMES.has(failed.outcome)) return { kind: 'none', reason: `${failed.outcome} is not retried` };
  const attempt = failed.attempt + 1;
  if (attempt > policy.maxRetries + 1) return { kind: 'none', reason: `retries exhausted (${policy.maxRetries})` };
  const name = retryJobName({ name: task.metadata.name ?? '', uid: task.metadata.uid ?? '' }, failed.runId, attempt);
  const started = Date.parse(failed.startTime);
  const newer = runs.find((r) => r.id !== failed.runId && !r.deleting && (r.id === name || Date.parse(r.createdAt) > started));
  if (newer) return { kind: 'none', reason: `run ${newer.id} came after ${failed.runId}` };
  const finishedAt = Date.parse(failed.completionTime ?? newest.run?.result?.finishedAt ?? failed.startTime);
  const dueAt = finishedAt + retryDelaySeconds(policy, attempt, failed.runId) * 1000;
  if (now < dueAt) return { kind: 'wait', failedRunId: failed.runId, attempt, dueAt };
  const args = newest.run?.job.spec?.template?.spec?.containers?.[0]?.args;
  return args ? { kind: 'start', failedRunId: failed.runId, attempt, name, args: [...args] } : { kind: 'start', failedRunId: failed.runId, attempt, name };
}
