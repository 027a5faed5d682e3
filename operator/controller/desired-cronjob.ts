// The CronJob a BackgroundTask should have, as a pure function of the task, its family's config,
// the task's registry metadata and the operator's settings; and the Jobs the operator starts
// itself (run-now, retries), made from the same template so every run of a task looks alike.
import type { V1Container, V1EnvVar, V1PodSpec, V1ResourceRequirements } from '@kubernetes/client-node';
import { taskOwnerReference } from '../kube/keys.ts';
import type { FamilyConfig } from '../config/families.ts';
import type { CronJob, Job, RunnerSettings, Task, TaskMetadata } from './deps.ts';
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
  taskLabelValue,
} from './labels.ts';
import { cronJobName } from './names.ts';
import { DEFAULT_TIME_ZONE } from './schedule.ts';
import type { RunTrigger } from '../../crds/schema.ts';
import type { Wire } from '../kube/types.ts';

export const RUNNER_CONTAINER = 'task-runner';
/** The runner image's user; any non-root uid works, a fixed one keeps file ownership predictable. */
export const RUNNER_UID = 10001;
/** The Kubernetes defaults, written out so the applied object says what it means. */
const DEFAULT_SUCCESSFUL_HISTORY = 3;
const DEFAULT_FAILED_HISTORY = 1;
/** The runner's own grace between the soft-timeout abort and giving up on the task (BGTASK_ABORT_GRACE_SECONDS). */
const RUNNER_ABORT_GRACE_SECONDS = 20;

export interface DesiredInput {
  task: Task;
  family: FamilyConfig;
  meta: TaskMetadata;
  settings: RunnerSettings;
}

export function taskLabels(task: Task): Record<string, string> {
  const name = task.metadata.name;
  if (!name) throw new Error('the BackgroundTask has no metadata.name');
  return {
    [MANAGED_BY_LABEL]: MANAGED_BY_VALUE,
    [TASK_NAME_LABEL]: name,
    [TASK_LABEL]: taskLabelValue(task.spec.task),
    [FAMILY_LABEL]: task.spec.task.slice(0, task.spec.task.indexOf('.')),
  };
}

/** timeoutSeconds of the spec, else the task's default: the Job's activeDeadlineSeconds. */
export function effectiveTimeoutSeconds(task: Task, meta: TaskMetadata): number {
  return task.spec.timeoutSeconds ?? meta.defaults.timeoutSeconds;
}

/**
 * The soft timeout: the spec's, else the task's default — but a spec that shortens the hard
 * timeout below the default soft one gets a soft timeout that leaves the runner its abort grace,
 * so the task can still stop at a safe point and report before the Job is killed.
 */
export function effectiveSoftTimeoutSeconds(task: Task, meta: TaskMetadata): number {
  if (task.spec.softTimeoutSeconds !== undefined) return task.spec.softTimeoutSeconds;
  const hard = effectiveTimeoutSeconds(task, meta);
  if (meta.defaults.softTimeoutSeconds < hard) return meta.defaults.softTimeoutSeconds;
  return Math.max(1, hard - RUNNER_ABORT_GRACE_SECONDS, Math.floor(hard / 2));
}

/** The family's resources with the spec's values over them, key by key. */
export function effectiveResources(task: Task, family: FamilyConfig): { requests: { cpu: string; memory: string }; limits: { cpu: string; memory: string } } {
  const spec = task.spec.resources;
  const pick = (own: string | number | undefined, fallback: string) => (own === undefined ? fallback : String(own));
  return {
    requests: {
      cpu: pick(spec?.requests?.cpu, family.resources.requests.cpu),
      memory: pick(spec?.requests?.memory, family.resources.requests.memory),
    },
    limits: {
      cpu: pick(spec?.limits?.cpu, family.resources.limits.cpu),
      memory: pick(spec?.limits?.memory, family.resources.limits.memory),
    },
  };
}

/** The runner's arguments: the task and its params as one JSON argument. */
export function runnerArgs(task: string, params: Record<string, unknown> | undefined): string[] {
  return ['run', task, '--params', JSON.stringify(params ?? {})];
}

function fieldRef(name: string, fieldPath: string): V1EnvVar {
  return { name, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath } } };
}

function podSpec(input: DesiredInput): Wire<V1PodSpec> {
  const { task, family, meta, settings } = input;
  const resources: V1ResourceRequirements = effectiveResources(task, family);
  // The operator-wide env first, less the names the task's spec.env sets itself (the task wins),
  // then the task's (so it may refer to the operator's with $(VAR)). The run's identity comes
  // last: duplicate names resolve to the last one, so neither the operator's settings nor the
  // task's spec.env can make a run report as another.
  const own = (task.spec.env ?? []) as V1EnvVar[];
  const ownNames = new Set(own.map((e) => e.name));
  const env: V1EnvVar[] = [
    ...(settings.env ?? []).filter((e) => !ownNames.has(e.name)),
    ...own,
    { name: 'BGTASK_TIMEOUT_SECONDS', value: String(effectiveTimeoutSeconds(task, meta)) },
    { name: 'BGTASK_SOFT_TIMEOUT_SECONDS', value: String(effectiveSoftTimeoutSeconds(task, meta)) },
    { name: 'BGTASK_NAME', value: task.metadata.name as string },
    fieldRef('BGTASK_NAMESPACE', 'metadata.namespace'),
    fieldRef('BGTASK_RUN_ID', `metadata.labels['${JOB_NAME_LABEL}']`),
    fieldRef('BGTASK_TRIGGER', `metadata.annotations['${TRIGGER_ANNOTATION}']`),
    fieldRef('BGTASK_ATTEMPT', `metadata.annotations['${ATTEMPT_ANNOTATION}']`),
  ];
  const container: V1Container = {
    name: RUNNER_CONTAINER,
    image: settings.runnerImage,
    args: runnerArgs(task.spec.task, task.spec.params),
    env,
    resources,
    // The runner writes its result to /dev/termination-log; if it dies before that, the log tail.
    terminationMessagePolicy: 'FallbackToLogsOnError',
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUNNER_UID,
      runAsGroup: RUNNER_UID,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }, ...(settings.volumeMounts ?? [])],
  };
  if (settings.imagePullPolicy) container.imagePullPolicy = settings.imagePullPolicy;
  // envFrom: the operator's sources, then the task's (a later source wins a key both hold). Any
  // env entry, the operator's included, wins over every envFrom source (Kubernetes' rule).
  const envFrom = [...(settings.envFrom ?? []), ...(task.spec.envFrom ?? [])];
  if (envFrom.length > 0) container.envFrom = envFrom;

  const spec: V1PodSpec = {
    restartPolicy: 'Never',
    serviceAccountName: settings.runnerServiceAccount,
    // Kubernetes' service links put every Service of the namespace in the environment: noise.
    enableServiceLinks: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUNNER_UID,
      runAsGroup: RUNNER_UID,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [container],
    volumes: [{ name: 'tmp', emptyDir: {} }, ...(settings.volumes ?? [])],
  };
  if (family.priorityClassName) spec.priorityClassName = family.priorityClassName;
  if (family.nodeSelector && Object.keys(family.nodeSelector).length > 0) spec.nodeSelector = family.nodeSelector;
  if (family.tolerations && family.tolerations.length > 0) spec.tolerations = family.tolerations;
  return spec as Wire<V1PodSpec>;
}

/** The CronJob of a task. Its Jobs are born suspended: the operator admits them (admission.ts). */
export function desiredCronJob(input: DesiredInput): CronJob {
  const { task } = input;
  const labels = taskLabels(task);
  const spec = task.spec;
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: {
      name: cronJobName(task.metadata.name as string),
      namespace: task.metadata.namespace,
      labels,
      ownerReferences: [taskOwnerReference(task)],
    },
    spec: {
      schedule: spec.schedule,
      timeZone: spec.timeZone ?? DEFAULT_TIME_ZONE,
      suspend: spec.suspend,
      concurrencyPolicy: spec.concurrencyPolicy,
      startingDeadlineSeconds: spec.startingDeadlineSeconds,
      successfulJobsHistoryLimit: spec.history?.successfulRuns ?? DEFAULT_SUCCESSFUL_HISTORY,
      failedJobsHistoryLimit: spec.history?.failedRuns ?? DEFAULT_FAILED_HISTORY,
      jobTemplate: {
        metadata: { labels },
        spec: {
          // Family admission: the Job waits, with no pod, until a slot of its family is free.
          suspend: true,
          // A failed pod fails the run; retries are the operator's (spec.retry), with delays
          // and a new attempt number, not the Job controller's immediate pod restarts.
          backoffLimit: 0,
          activeDeadlineSeconds: effectiveTimeoutSeconds(task, input.meta),
          template: {
            metadata: { labels, annotations: { [TRIGGER_ANNOTATION]: 'Schedule', [ATTEMPT_ANNOTATION]: '1' } },
            spec: podSpec(input),
          },
        },
      },
    },
  } as CronJob;
}

export interface RunJobInput {
  /** The task's desired CronJob: the run is made from its job template. */
  cronJob: CronJob;
  task: Task;
  name: string;
  trigger: Exclude<RunTrigger, 'Schedule'>;
  attempt: number;
  /** The runner's args when they differ from the template's (params overrides, a retry's original params). */
  args?: string[];
  /** Extra annotations on the Job (run-now token, retry-of). */
  annotations?: Record<string, string>;
}

/**
 * A Job the operator starts itself, from the CronJob's template: suspended like every run (the
 * family admits it), owned by the task, and holding the run-accounting finalizer from birth.
 */
export function desiredRunJob(input: RunJobInput): Job {
  const template = input.cronJob.spec?.jobTemplate;
  const podTemplate = template?.spec?.template;
  const container = podTemplate?.spec?.containers?.[0];
  if (!template?.spec || !podTemplate?.spec || !container) throw new Error('the CronJob has no job template to make a run from');
  const labels = { ...template.metadata?.labels };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: input.name,
      namespace: input.task.metadata.namespace,
      labels,
      annotations: { ...input.annotations },
      ownerReferences: [taskOwnerReference(input.task)],
      finalizers: [RUN_FINALIZER],
    },
    spec: {
      ...template.spec,
      suspend: true,
      template: {
        metadata: {
          ...podTemplate.metadata,
          labels: { ...podTemplate.metadata?.labels },
          annotations: { ...podTemplate.metadata?.annotations, [TRIGGER_ANNOTATION]: input.trigger, [ATTEMPT_ANNOTATION]: String(input.attempt) },
        },
        spec: {
          ...podTemplate.spec,
          containers: [{ ...container, args: input.args ?? container.args }, ...podTemplate.spec.containers.slice(1)],
        },
      },
    },
  } as Job;
}
