// A task's runs, read from the world: each Job the task owns (directly, or through its CronJob)
// is one run, and its outcome is read, in order of trust, from
//   1. the runner's own report: status.lastRun written by the runner for that run id;
//   2. the runner's termination message on the pod (the same JSON, kept by the kubelet);
//   3. what Kubernetes saw: the Job's conditions and the pod's container state, or the Job's
//      deletion before it finished (Cancelled).
import { lastRunSchema, type LastRun, type RunOutcome, type RunTrigger, RUN_TRIGGERS } from '../../crds/schema.ts';
import type { Job, Pod } from './deps.ts';
import { ATTEMPT_ANNOTATION, CREATED_AT_ANNOTATION, RETRY_OF_ANNOTATION, RUN_FINALIZER, RUN_NOW_TOKEN_ANNOTATION, TRIGGER_ANNOTATION } from './labels.ts';
import { RUNNER_CONTAINER } from './desired-cronjob.ts';

export interface RunResult {
  outcome: RunOutcome;
  /** When the run ended, as the Job's terminal condition says (RFC 3339). */
  finishedAt: string;
  message: string;
}

export interface Run {
  job: Job;
  /** The Job's name: the run id the runner reports under (BGTASK_RUN_ID). */
  id: string;
  uid: string;
  trigger: RunTrigger;
  attempt: number;
  /** For a retry: the run it retries. */
  retryOf?: string;
  /** For a manual run: the run-now token it answers. */
  runNowToken?: string;
  createdAt: string;
  /** When the operator made the Job, to the millisecond by its own clock (CREATED_AT_ANNOTATION); unset for the CronJob's. */
  createdAtPrecise?: number;
  /** When the run was admitted and started (the Job's status.startTime). */
  startedAt?: string;
  /** Waiting for a slot of its family: suspended, not finished, not being deleted. */
  queued: boolean;
  /** Has been let run at least once (unsuspended, started, finished or holding the finalizer). */
  admitted: boolean;
  deleting: boolean;
  hasFinalizer: boolean;
  /**
   * A pod of the Job may still be running: one it owns (not orphaned by a deletion with
   * propagationPolicy Orphan) that is neither Succeeded nor Failed, a terminating one included.
   */
  podsLive: boolean;
  result?: RunResult;
  /** The runner's report of this run: status.lastRun or the termination message. */
  report?: LastRun;
}

type JobCondition = NonNullable<NonNullable<Job['status']>['conditions']>[number];

function condition(job: Job, type: string): JobCondition | undefined {
  return job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}

const IMAGE_PROBLEMS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);

function runnerStatus(pod: Pod) {
  const statuses = pod.status?.containerStatuses ?? [];
  return statuses.find((s) => s.name === RUNNER_CONTAINER) ?? statuses[0];
}

/** The runner's result line, if the pod's container ended with one for this run. */
export function terminationReport(pods: readonly Pod[], runId: string): LastRun | undefined {
  for (const pod of pods) {
    const message = runnerStatus(pod)?.state?.terminated?.message;
    if (!message) continue;
    const firstLine = message.trim().split('\n')[0] ?? '';
    let parsed: unknown;
    try {
      parsed = JSON.parse(firstLine);
    } catch {
      // FallbackToLogsOnError puts the log tail here when the runner died before reporting: not a report.
      continue;
    }
    const report = lastRunSchema.safeParse(parsed);
    if (report.success && report.data.runId === runId) return report.data;
  }
  return undefined;
}

/** The pods' story in one line, newest pod first, for the message of a run Kubernetes ended. */
function podEvidence(pods: readonly Pod[]): { oomKilled: boolean; exitCode?: number; reason?: string; detail?: string; imageProblem?: string } {
  const newestFirst = [...pods].sort((a, b) => (b.metadata?.creationTimestamp ?? '').localeCompare(a.metadata?.creationTimestamp ?? ''));
  for (const pod of newestFirst) {
    const status = runnerStatus(pod);
    const terminated = status?.state?.terminated ?? status?.lastState?.terminated;
    if (terminated) {
      return {
        oomKilled: terminated.reason === 'OOMKilled',
        exitCode: terminated.exitCode,
        ...(terminated.reason ? { reason: terminated.reason } : {}),
        ...(terminated.message ? { detail: terminated.message.trim().split('\n').slice(-3).join(' ') } : {}),
      };
    }
    const waiting = status?.state?.waiting;
    if (waiting?.reason && IMAGE_PROBLEMS.has(waiting.reason)) {
      // The status names the image: the cache keeps no pod spec (operator/kube/transforms.ts).
      const image = status?.image || 'the runner image';
      return { oomKilled: false, imageProblem: `image ${image} could not be pulled (${waiting.reason})${waiting.message ? `: ${waiting.message}` : ''}` };
    }
    if (pod.status?.reason === 'Evicted' || pod.status?.reason) {
      return { oomKilled: false, reason: pod.status.reason, ...(pod.status.message ? { detail: pod.status.message } : {}) };
    }
  }
  return { oomKilled: false };
}

/**
 * How a finished Job ended, or undefined while it has not. The runner's report wins, except that
 * a run the Job's deadline killed is TimedOut even when the runner, seeing only SIGTERM, said
 * Interrupted.
 */
export function jobResult(job: Job, pods: readonly Pod[], report: LastRun | undefined): RunResult | undefined {
  const complete = condition(job, 'Complete');
  const failed = condition(job, 'Failed');
  const terminal = complete ?? failed;
  const deletedAt = job.metadata?.deletionTimestamp;
  if (!terminal) return deletedAt ? deletedResult(deletedAt, report) : undefined;
  // A Job deleted while its pod ran may still be marked Failed, after the deletion: that failure is
  // the deletion's doing (a same-second one is taken as the run's own).
  if (deletedAt && !complete && Date.parse(terminal.lastTransitionTime ?? '') > Date.parse(deletedAt)) return deletedResult(deletedAt, report);
  const finishedAt = terminal.lastTransitionTime ?? job.status?.completionTime ?? job.metadata?.creationTimestamp ?? new Date(0).toISOString();
  const deadline = failed?.reason === 'DeadlineExceeded';

  if (report?.outcome) {
    const outcome = deadline && report.outcome === 'Interrupted' ? 'TimedOut' : report.outcome;
    return { outcome, finishedAt, message: report.message ?? outcome };
  }
  if (complete) return { outcome: 'Succeeded', finishedAt, message: 'succeeded' };

  const pod = podEvidence(pods);
  const jobSays = [failed?.reason, failed?.message].filter(Boolean).join(': ');
  if (pod.oomKilled) return { outcome: 'OOMKilled', finishedAt, message: 'the runner was killed for exceeding its memory limit (OOMKilled)' };
  if (pod.imageProblem) return { outcome: 'Failed', finishedAt, message: pod.imageProblem };
  if (deadline) return { outcome: 'TimedOut', finishedAt, message: `the run exceeded its timeout: ${jobSays}` };
  const detail = pod.detail ? `: ${pod.detail}` : '';
  switch (pod.exitCode) {
    case 143:
      return { outcome: 'Interrupted', finishedAt, message: `the runner was stopped (exit 143)${detail}` };
    case 2:
      return { outcome: 'InvalidInput', finishedAt, message: `the runner refused its input (exit 2)${detail}` };
    case undefined:
      break;
    default:
      return { outcome: 'Failed', finishedAt, message: `the runner exited with code ${pod.exitCode}${pod.reason ? ` (${pod.reason})` : ''}${detail}` };
  }
  if (pod.reason) return { outcome: 'Failed', finishedAt, message: `the pod failed: ${pod.reason}${detail}` };
  return { outcome: 'Failed', finishedAt, message: jobSays ? `the Job failed: ${jobSays}` : 'the Job failed' };
}

/**
 * A run whose Job was deleted before it finished (someone stopping it, or a Replace): Cancelled,
 * at the deletion, and never retried, so deleting a run's Job stops it for good, a waiting retry's
 * too. The runner's report stands if it had finished the run by then; its Interrupted is the
 * SIGTERM of the deletion itself.
 */
function deletedResult(deletedAt: string, report: LastRun | undefined): RunResult {
  // Only a report of a run that ended before the deletion: Interrupted is the deletion's SIGTERM,
  // and Cancelled is this verdict read back from the status (it always ends at the deletion, so a
  // run is counted once however late its pod stops).
  const { outcome, completionTime, message } = report ?? {};
  if (outcome && outcome !== 'Interrupted' && outcome !== 'Cancelled' && completionTime && Date.parse(completionTime) <= Date.parse(deletedAt)) {
    return { outcome, finishedAt: completionTime, message: message ?? outcome };
  }
  return { outcome: 'Cancelled', finishedAt: deletedAt, message: 'its Job was deleted before the run finished' };
}

function triggerOf(value: string | undefined): RunTrigger {
  return (RUN_TRIGGERS as readonly string[]).includes(value ?? '') ? (value as RunTrigger) : 'Schedule';
}

/**
 * A runner's report with the run's trigger and attempt as its Job says: the run tells how it went,
 * not which run it was, so a report cannot restart the count of a failure's retries.
 */
function asJobSays(report: LastRun | undefined, trigger: RunTrigger, attempt: number): LastRun | undefined {
  if (!report || (report.trigger === trigger && report.attempt === attempt)) return report;
  return { ...report, trigger, attempt };
}

/** One Job as a run. `lastRun` is the task's status.lastRun, the runner's report if it is this run's. */
export function runOf(job: Job, pods: readonly Pod[], lastRun: LastRun | undefined): Run {
  const id = job.metadata?.name ?? '';
  const annotations = job.spec?.template?.metadata?.annotations ?? {};
  const parsedAttempt = Number.parseInt(annotations[ATTEMPT_ANNOTATION] ?? '1', 10);
  const attempt = Number.isInteger(parsedAttempt) && parsedAttempt >= 1 ? parsedAttempt : 1;
  const trigger = triggerOf(annotations[TRIGGER_ANNOTATION]);
  const report = asJobSays(lastRun?.runId === id && lastRun.outcome ? lastRun : terminationReport(pods, id), trigger, attempt);
  const result = jobResult(job, pods, report);
  const deleting = job.metadata?.deletionTimestamp !== undefined;
  const hasFinalizer = job.metadata?.finalizers?.includes(RUN_FINALIZER) ?? false;
  const suspended = job.spec?.suspend === true;
  const run: Run = {
    job,
    id,
    uid: job.metadata?.uid ?? '',
    trigger,
    attempt,
    createdAt: job.metadata?.creationTimestamp ?? '',
    queued: suspended && !result && !deleting,
    // Not the finalizer: run-now and retry Jobs carry it from their creation, while they wait.
    admitted: !suspended || job.status?.startTime !== undefined || result !== undefined,
    deleting,
    hasFinalizer,
    podsLive: pods.some((p) => p.metadata?.ownerReferences?.some((o) => o.uid === job.metadata?.uid) && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed'),
  };
  const retryOf = job.metadata?.annotations?.[RETRY_OF_ANNOTATION];
  const token = job.metadata?.annotations?.[RUN_NOW_TOKEN_ANNOTATION];
  if (retryOf) run.retryOf = retryOf;
  if (token) run.runNowToken = token;
  const precise = Date.parse(job.metadata?.annotations?.[CREATED_AT_ANNOTATION] ?? '');
  if (!Number.isNaN(precise)) run.createdAtPrecise = precise;
  if (job.status?.startTime) run.startedAt = job.status.startTime;
  if (result) run.result = result;
  if (report) run.report = report;
  return run;
}

/** Oldest first: by creation time, then name (the CronJob controller's names sort by schedule). */
export function byCreation(a: { createdAt: string; id: string }, b: { createdAt: string; id: string }): number {
  return Date.parse(a.createdAt) - Date.parse(b.createdAt) || a.id.localeCompare(b.id);
}

export function runsOf(jobs: readonly Job[], podsOf: (job: Job) => readonly Pod[], lastRun: LastRun | undefined): Run[] {
  return jobs.map((job) => runOf(job, podsOf(job), lastRun)).sort(byCreation);
}

/**
 * status.lastRun as recorded, unless it tells of a run of an earlier task of the same name: a
 * runner reports by name, so one stopped while its task was deleted and made again writes into
 * the new task. A run of this task started after the task was made.
 */
export function recordedLastRun(task: { metadata: { creationTimestamp?: string | undefined }; status?: { lastRun?: LastRun | undefined } | undefined }): LastRun | undefined {
  const recorded = task.status?.lastRun;
  if (!recorded) return undefined;
  return Date.parse(recorded.startTime) < Date.parse(task.metadata.creationTimestamp ?? '') ? undefined : recorded;
}

/**
 * The task's newest run, as status.lastRun should describe it: the newest admitted Job, or the
 * recorded lastRun when that is newer (its Job already deleted). Newest by start time.
 */
export function newestRun(runs: readonly Run[], recorded: LastRun | undefined): { run?: Run; lastRun?: LastRun } {
  const started = runs.filter((r) => r.admitted && !(cancelledUnstarted(r) && outranked(r, runs)));
  const startOf = (r: Run) => Date.parse(r.startedAt ?? r.report?.startTime ?? r.createdAt);
  const newest = started.reduce<Run | undefined>((best, r) => (!best || startOf(r) > startOf(best) || (startOf(r) === startOf(best) && r.id > best.id) ? r : best), undefined);
  if (recorded && (!newest || (recorded.runId !== newest.id && Date.parse(recorded.startTime) > startOf(newest)))) {
    return { lastRun: recorded };
  }
  if (!newest) return {};
  return { run: newest, lastRun: lastRunOf(newest) };
}

/** A run cancelled while it waited: its Job was deleted before it was ever let run. */
const cancelledUnstarted = (r: Run) => r.result?.outcome === 'Cancelled' && !r.startedAt && !r.report;

/**
 * Whether another run was going, or had not yet finished, when `waiting` was made: then that run,
 * not the cancelled one that never ran, is the task's newest. A cancelled waiting retry is the
 * newest after its failed run (which had ended): stored as lastRun, it ends that failure's retries.
 */
function outranked(waiting: Run, runs: readonly Run[]): boolean {
  const madeAt = Date.parse(waiting.createdAt);
  return runs.some((r) => r !== waiting && r.admitted && !cancelledUnstarted(r) && (!r.result || Date.parse(r.result.finishedAt) > madeAt));
}

/** status.lastRun for a run: the runner's report when there is one, else what the Job shows. */
export function lastRunOf(run: Run): LastRun {
  if (run.report) {
    // A deadline turns the runner's Interrupted into TimedOut (jobResult), a deletion into
    // Cancelled at the deletion: the status says so too.
    const result = run.result;
    if (!result || result.outcome === run.report.outcome) return run.report;
    if (result.outcome !== 'Cancelled') return { ...run.report, outcome: result.outcome };
    const durationSeconds = Math.max(0, (Date.parse(result.finishedAt) - Date.parse(run.report.startTime)) / 1000);
    return { ...run.report, outcome: result.outcome, completionTime: result.finishedAt, durationSeconds, message: result.message };
  }
  const startTime = run.startedAt ?? run.createdAt;
  const lastRun: LastRun = { runId: run.id, trigger: run.trigger, attempt: run.attempt, startTime };
  if (run.result) {
    lastRun.completionTime = run.result.finishedAt;
    // A run that never started has no duration (its time waiting is not one).
    if (run.startedAt) lastRun.durationSeconds = Math.max(0, (Date.parse(run.result.finishedAt) - Date.parse(startTime)) / 1000);
    lastRun.outcome = run.result.outcome;
    lastRun.message = run.result.message.slice(0, 1024);
  }
  return lastRun;
}
