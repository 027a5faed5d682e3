// Builders of BackgroundTasks, Jobs and Pods as the informer caches hold them (wire JSON), for
// the operator controller's unit tests.
import { z } from 'zod';
import type { BackgroundTaskSpec, BackgroundTaskStatus } from '../../crds/schema.ts';
import type { Job, Pod, Task, TaskCatalog, TaskMetadata } from '../../operator/controller/deps.ts';
import {
  ATTEMPT_ANNOTATION,
  FAMILY_LABEL,
  JOB_NAME_LABEL,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  RUN_FINALIZER,
  TASK_LABEL,
  TASK_NAME_LABEL,
  TRIGGER_ANNOTATION,
} from '../../operator/controller/labels.ts';

export const NS = 'assistant';
export const TASK_UID = '7d3c1a9e-0000-4000-8000-000000000001';
export const CRONJOB_UID = '7d3c1a9e-0000-4000-8000-0000000000c1';

export const DIGEST: TaskMetadata = {
  name: 'email.digest',
  family: 'email',
  params: z.strictObject({
    recipients: z.array(z.email()).default([]),
    subject: z.string().max(80).optional(),
  }),
  defaults: { schedule: '0 8 * * *', retry: { maxRetries: 3, delaySeconds: 60, backoff: 'Exponential' }, timeoutSeconds: 600, softTimeoutSeconds: 540 },
};

export const CLEANUP: TaskMetadata = {
  name: 'maintenance.cleanup-old-sessions',
  family: 'maintenance',
  params: z.strictObject({ batchSize: z.int().min(1).default(1000) }),
  defaults: { schedule: '0 4 * * *', retry: { maxRetries: 2, delaySeconds: 600, backoff: 'Fixed' }, timeoutSeconds: 1800, softTimeoutSeconds: 1500 },
};

export const CATALOG: TaskCatalog = {
  tasks: [DIGEST, CLEANUP],
  get: (name) => [DIGEST, CLEANUP].find((t) => t.name === name),
};

export interface TaskOptions {
  name?: string;
  uid?: string;
  generation?: number;
  createdAt?: string;
  spec?: Partial<BackgroundTaskSpec>;
  status?: BackgroundTaskStatus;
  annotations?: Record<string, string>;
  deleting?: boolean;
}

export function makeTask(opts: TaskOptions = {}): Task {
  return {
    apiVersion: 'workers.personal-assistant.io/v1alpha1',
    kind: 'BackgroundTask',
    metadata: {
      name: opts.name ?? 'digest',
      namespace: NS,
      uid: opts.uid ?? TASK_UID,
      generation: opts.generation ?? 1,
      creationTimestamp: opts.createdAt ?? '2026-11-01T00:00:00Z',
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
      ...(opts.deleting ? { deletionTimestamp: '2026-11-28T00:00:00Z' } : {}),
    },
    spec: { task: 'email.digest', schedule: '0 8 * * *', suspend: false, concurrencyPolicy: 'Forbid', startingDeadlineSeconds: 3600, ...opts.spec },
    ...(opts.status ? { status: opts.status } : {}),
  };
}

export interface JobOptions {
  task?: Task;
  createdAt?: string;
  trigger?: 'Schedule' | 'Manual' | 'Retry';
  attempt?: number;
  suspended?: boolean;
  startedAt?: string;
  complete?: string;
  failed?: { at: string; reason?: string; message?: string };
  deleting?: boolean;
  finalizer?: boolean;
  /** Who made it: the CronJob (scheduled runs) or the operator (run-now, retries). */
  owner?: 'CronJob' | 'BackgroundTask';
  family?: string;
  uid?: string;
  annotations?: Record<string, string>;
  args?: string[];
}

export function makeJob(name: string, opts: JobOptions = {}): Job {
  const task = opts.task ?? makeTask();
  const family = opts.family ?? task.spec.task.split('.')[0]!;
  const labels = {
    [MANAGED_BY_LABEL]: MANAGED_BY_VALUE,
    [TASK_NAME_LABEL]: task.metadata.name!,
    [TASK_LABEL]: task.spec.task.replace('.', '-'),
    [FAMILY_LABEL]: family,
  };
  const owner =
    (opts.owner ?? 'CronJob') === 'CronJob'
      ? { apiVersion: 'batch/v1', kind: 'CronJob', name: task.metadata.name!, uid: CRONJOB_UID, controller: true }
      : { apiVersion: 'workers.personal-assistant.io/v1alpha1', kind: 'BackgroundTask', name: task.metadata.name!, uid: task.metadata.uid!, controller: true };
  const conditions = [];
  if (opts.complete) conditions.push({ type: 'Complete', status: 'True', lastTransitionTime: opts.complete });
  if (opts.failed) conditions.push({ type: 'Failed', status: 'True', lastTransitionTime: opts.failed.at, reason: opts.failed.reason ?? 'BackoffLimitExceeded', message: opts.failed.message ?? 'Job has reached the specified backoff limit' });
  const suspended = opts.suspended ?? false;
  // A Job that has been admitted has started and holds the run-accounting finalizer.
  const startTime = opts.startedAt ?? (suspended ? undefined : (opts.createdAt ?? '2026-11-28T08:00:00Z'));
  const finalizer = opts.finalizer ?? !suspended;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace: task.metadata.namespace,
      uid: opts.uid ?? `uid-${name}`,
      creationTimestamp: opts.createdAt ?? '2026-11-28T08:00:00Z',
      labels,
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
      ownerReferences: [owner],
      ...(finalizer ? { finalizers: [RUN_FINALIZER] } : {}),
      ...(opts.deleting ? { deletionTimestamp: '2026-11-28T12:00:00Z' } : {}),
    },
    spec: {
      suspend: suspended,
      backoffLimit: 0,
      template: {
        metadata: { labels, annotations: { [TRIGGER_ANNOTATION]: opts.trigger ?? 'Schedule', [ATTEMPT_ANNOTATION]: String(opts.attempt ?? 1) } },
        spec: { restartPolicy: 'Never', containers: [{ name: 'task-runner', image: 'bgtask.local/task-runner:dev', args: opts.args ?? ['run', task.spec.task, '--params', '{}'] }] },
      },
    },
    status: {
      ...(startTime ? { startTime } : {}),
      ...(conditions.length > 0 ? { conditions } : {}),
      ...(opts.complete ? { completionTime: opts.complete } : {}),
    },
  } as Job;
}

export interface PodOptions {
  createdAt?: string;
  /** Its Job deleted with propagationPolicy Orphan: the garbage collector took the owner reference away. */
  orphaned?: boolean;
  terminated?: { exitCode: number; reason?: string; message?: string };
  waiting?: { reason: string; message?: string };
  podReason?: string;
  podMessage?: string;
  image?: string;
}

export function makePod(job: Job, opts: PodOptions = {}): Pod {
  const jobName = job.metadata!.name!;
  const state = opts.terminated
    ? { terminated: { exitCode: opts.terminated.exitCode, reason: opts.terminated.reason ?? (opts.terminated.exitCode === 0 ? 'Completed' : 'Error'), ...(opts.terminated.message ? { message: opts.terminated.message } : {}) } }
    : opts.waiting
      ? { waiting: opts.waiting }
      : { running: { startedAt: '2026-11-28T08:00:01Z' } };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${jobName}-abcde`,
      namespace: job.metadata!.namespace,
      uid: `uid-pod-${jobName}`,
      creationTimestamp: opts.createdAt ?? '2026-11-28T08:00:01Z',
      labels: { [JOB_NAME_LABEL]: jobName },
      ...(opts.orphaned ? {} : { ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: jobName, uid: job.metadata!.uid!, controller: true, blockOwnerDeletion: true }] }),
    },
    spec: { containers: [{ name: 'task-runner', image: opts.image ?? 'bgtask.local/task-runner:dev' }] },
    status: {
      phase: opts.terminated ? (opts.terminated.exitCode === 0 ? 'Succeeded' : 'Failed') : opts.podReason ? 'Failed' : 'Running',
      ...(opts.podReason ? { reason: opts.podReason, message: opts.podMessage } : {}),
      containerStatuses: [{ name: 'task-runner', image: opts.image ?? 'bgtask.local/task-runner:dev', imageID: '', ready: false, restartCount: 0, state }],
    },
  } as Pod;
}

/** The runner's one-line result, as it writes it to /dev/termination-log. */
export function runnerReport(runId: string, outcome: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    runId,
    trigger: 'Schedule',
    attempt: 1,
    startTime: '2026-11-28T08:00:02.120Z',
    completionTime: '2026-11-28T08:00:05.480Z',
    durationSeconds: 3.36,
    outcome,
    summary: { emailsSent: 3 },
    message: outcome === 'Succeeded' ? 'sent 3 digests' : `ended ${outcome}`,
    ...extra,
  });
}
