// Names of what the operator creates. Every name is a pure function of the task (and, for runs
// the operator starts itself, of what asked for the run), so an operator that restarts halfway
// computes the same name and finds the object it already made instead of making a second one.
import { createHash } from 'node:crypto';

/**
 * The CronJob controller names each Job `<cronjob>-<minutes since epoch>` (8 digits) and a Job's
 * name must fit a 63-character label value, so the API caps CronJob names at 52.
 */
export const CRONJOB_NAME_MAX = 52;
/** A Job's name is copied into its pods' `batch.kubernetes.io/job-name` label: 63 at most. */
export const JOB_NAME_MAX = 63;
const HASH_LENGTH = 8;

/** A short, stable digest of the parts (NUL-separated so ("ab","c") ≠ ("a","bc")). */
export function shortHash(...parts: readonly string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, HASH_LENGTH);
}

/** Cuts a DNS-subdomain name to `max` characters and drops what would leave it ending in `-` or `.`. */
function cut(name: string, max: number): string {
  return name.slice(0, Math.max(0, max)).replace(/[-.]+$/, '');
}

/**
 * The CronJob of a BackgroundTask: the task's own name when it fits, else a prefix of it plus a
 * hash of the whole name, so two long names sharing a prefix still get two CronJobs.
 */
export function cronJobName(taskName: string): string {
  if (taskName.length <= CRONJOB_NAME_MAX) return taskName;
  return `${cut(taskName, CRONJOB_NAME_MAX - HASH_LENGTH - 1)}-${shortHash(taskName)}`;
}

/** `<task prefix>-<suffix>`, at most 63 characters. */
function jobName(taskName: string, suffix: string): string {
  return `${cut(taskName, JOB_NAME_MAX - suffix.length - 1)}-${suffix}`;
}

export interface TaskIdentity {
  name: string;
  /** The task's UID: a task deleted and created again under the same name starts a new series of names. */
  uid: string;
}

/** The Job answering one run-now token of a task. */
export function manualJobName(task: TaskIdentity, token: string): string {
  return jobName(task.name, `now-${shortHash(task.uid, 'run-now', token)}`);
}

/** The Job retrying a failed run (its Job name is the run id) as attempt `attempt`. */
export function retryJobName(task: TaskIdentity, failedRunId: string, attempt: number): string {
  if (!Number.isInteger(attempt) || attempt < 2) throw new RangeError(`a retry is attempt 2 or later, not ${attempt}`);
  return jobName(task.name, `retry${attempt}-${shortHash(task.uid, 'retry', failedRunId)}`);
}
