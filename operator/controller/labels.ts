// The labels, annotations and finalizer the operator puts on what it makes. The task-name and
// managed-by labels come from operator/kube/keys.ts: the informers select and index on them.
import { API_GROUP } from '../../crds/schema.ts';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, TASK_NAME_LABEL } from '../kube/keys.ts';

export { MANAGED_BY_LABEL, MANAGED_BY_VALUE, TASK_NAME_LABEL };

/** The task a run executes, with `.` replaced by `-` (`email.process-queue` → `email-process-queue`). */
export const TASK_LABEL = `${API_GROUP}/task`;
/** The family whose concurrency a Job counts against: admission lists Jobs by it. */
export const FAMILY_LABEL = `${API_GROUP}/family`;

/** On every Job's pod template; read by the runner through the downward API (BGTASK_TRIGGER). */
export const TRIGGER_ANNOTATION = `${API_GROUP}/trigger`;
/** On every Job's pod template; read by the runner through the downward API (BGTASK_ATTEMPT). */
export const ATTEMPT_ANNOTATION = `${API_GROUP}/attempt`;
/** On a retry Job: the name (run id) of the failed run it retries. */
export const RETRY_OF_ANNOTATION = `${API_GROUP}/retry-of`;
/** On a manual Job: the run-now token it answers. */
export const RUN_NOW_TOKEN_ANNOTATION = `${API_GROUP}/run-now-token`;
/**
 * On a Job the operator makes: when, to the millisecond. creationTimestamp has whole seconds, and
 * a run-now made in the same second as the run it replaces (concurrencyPolicy Replace) must still
 * come out as the newer one; its name, a hash of the token, says nothing of its age.
 */
export const CREATED_AT_ANNOTATION = `${API_GROUP}/created-at`;

/** On a BackgroundTask, set by the user: a new value asks for one manual run. */
export { RUN_NOW_ANNOTATION } from '../../crds/schema.ts';
/** On a BackgroundTask, set by the user beside run-now: a JSON object merged over spec.params for that run. */
export const RUN_NOW_PARAMS_ANNOTATION = `${API_GROUP}/run-now-params`;
/** On a BackgroundTask, set by the operator: the run-now token already answered, so it is answered once. */
export const RUN_NOW_HANDLED_ANNOTATION = `${API_GROUP}/run-now-handled`;

/**
 * On every Job the operator admits: holds a finished Job until its outcome has been counted in
 * the task's status, so a Job deleted by the CronJob's history limit (or by anyone) is never lost
 * from the counters. The Job controller's `batch.kubernetes.io/job-tracking` finalizer on pods is
 * the same idea one level down.
 */
export const RUN_FINALIZER = `${API_GROUP}/run-accounting`;

/** Set by the Job controller on a Job's pods (and read through the downward API as the run id). */
export const JOB_NAME_LABEL = 'batch.kubernetes.io/job-name';

/** The task label's value: `email.process-queue` → `email-process-queue`, spelled like the names of its Jobs and pods. */
export function taskLabelValue(task: string): string {
  return task.replaceAll('.', '-');
}
