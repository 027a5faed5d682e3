// The BackgroundTask API's names and enumerations as plain values. Imports nothing: the task-runner
// needs these at every start, and crds/schema.ts (which re-exports them) builds the whole zod
// schema as it loads.

export const API_GROUP = 'workers.personal-assistant.io';
export const API_VERSION = 'v1alpha1';
export const GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;
export const KIND = 'BackgroundTask';
export const LIST_KIND = 'BackgroundTaskList';
export const PLURAL = 'backgroundtasks';
export const SINGULAR = 'backgroundtask';
export const SHORT_NAMES = ['bgt', 'bgtask'] as const;
export const CATEGORIES = ['workers'] as const;

/** Setting this annotation (any value; a timestamp is conventional) asks the operator for an immediate run. */
export const RUN_NOW_ANNOTATION = `${API_GROUP}/run-now`;

export const FAMILIES = ['ai', 'email', 'file', 'sync', 'maintenance'] as const;
export type Family = (typeof FAMILIES)[number];

// Cancelled is the operator's, never the runner's: the run's Job was deleted before it finished.
export const RUN_OUTCOMES = ['Succeeded', 'Failed', 'TimedOut', 'OOMKilled', 'Interrupted', 'InvalidInput', 'Cancelled'] as const;
export type RunOutcome = (typeof RUN_OUTCOMES)[number];

export const RUN_TRIGGERS = ['Schedule', 'Manual', 'Retry'] as const;
export type RunTrigger = (typeof RUN_TRIGGERS)[number];

export const CONCURRENCY_POLICIES = ['Forbid', 'Allow', 'Replace'] as const;
export type ConcurrencyPolicy = (typeof CONCURRENCY_POLICIES)[number];

export const BACKOFF_KINDS = ['Fixed', 'Exponential'] as const;
export type BackoffKind = (typeof BACKOFF_KINDS)[number];

/** A task name is `<family>.<kebab-case-name>`, e.g. `email.process-queue`. */
export const TASK_NAME_PATTERN = `^(${FAMILIES.join('|')})\\.[a-z0-9]+(-[a-z0-9]+)*$`;

/**
 * The name of a BackgroundTask is copied into label values on its CronJob, Jobs and pods, and a
 * label value holds at most 63 characters.
 */
export const MAX_NAME_LENGTH = 63;

/** The family a (valid) task name belongs to. */
export function familyOf(task: string): Family {
  const family = task.slice(0, task.indexOf('.'));
  if (!(FAMILIES as readonly string[]).includes(family)) throw new Error(`task ${JSON.stringify(task)} has no known family`);
  return family as Family;
}

// Kubernetes' own name rules (apimachinery validation), shared by the CRD, the operator's flags
// and the runner's configuration.
/** RFC 1123 label: namespaces, volume names. */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
/** RFC 1123 subdomain: most object names (Secrets, ConfigMaps, ServiceAccounts, Leases). */
export const DNS_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
/** An environment variable name, as core/v1 accepts it. */
export const ENV_VAR_NAME_PATTERN = '^[-._a-zA-Z][-._a-zA-Z0-9]*$';
/** A Secret or ConfigMap key. */
export const CONFIG_KEY_PATTERN = '^[-._a-zA-Z0-9]+$';
