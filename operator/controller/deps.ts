// What the reconciler is given, and the shapes of the objects it reads. The caches hold wire
// JSON (timestamps are RFC 3339 strings); see operator/kube/types.ts.
import type {
  V1CronJob,
  V1EnvFromSource,
  V1EnvVar,
  V1Job,
  V1ObjectMeta,
  V1Pod,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { BackgroundTask } from '../../crds/schema.ts';
import type { FamiliesConfig } from '../config/families.ts';
import type { WriteExpectations } from './expectations.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { RawApi } from '../kube/raw-api.ts';
import type { ReadonlyStore } from '../kube/store.ts';
import type { KubeObject, Wire } from '../kube/types.ts';
import type { OperatorMetrics } from '../metrics.ts';

export type { EventRecorder, EventType } from '../kube/events.ts';

export type CronJob = Wire<V1CronJob> & KubeObject;
export type Job = Wire<V1Job> & KubeObject;
export type Pod = Wire<V1Pod> & KubeObject;
export type Task = Omit<BackgroundTask, 'metadata'> & { metadata: Wire<V1ObjectMeta> };

/** What the operator knows of a task from the registry: no `run()`, no client libraries. */
export interface TaskMetadata {
  readonly name: string;
  readonly family: string;
  readonly params: z.ZodType;
  readonly defaults: {
    readonly schedule: string;
    readonly retry: { readonly maxRetries: number; readonly delaySeconds: number; readonly backoff: 'Fixed' | 'Exponential' };
    readonly timeoutSeconds: number;
    readonly softTimeoutSeconds: number;
  };
}

/** The task registry (task-runner/registry.ts's Registry satisfies it), loaded with the runner's TASK_PLUGINS. */
export interface TaskCatalog {
  get(name: string): TaskMetadata | undefined;
  readonly tasks: readonly TaskMetadata[];
}

/** How every run's pod is made, whatever the task. */
export interface RunnerSettings {
  runnerImage: string;
  runnerServiceAccount: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /**
   * Environment of every run (credentials, service URLs, TASK_PLUGINS), before the task's own
   * spec.env; a spec.env entry of the same name replaces the operator's.
   */
  env?: V1EnvVar[];
  /** Sources of every run's environment, before the task's own spec.envFrom. */
  envFrom?: V1EnvFromSource[];
  /** Extra volumes of every run's pod, e.g. a ConfigMap of plugin modules named in TASK_PLUGINS. */
  volumes?: V1Volume[];
  volumeMounts?: V1VolumeMount[];
}

export interface ReconcilerSettings extends RunnerSettings {
  /** The one namespace watched, or every namespace when unset. */
  namespace?: string;
  fieldManager: string;
}

export interface ReconcileCaches {
  tasks: ReadonlyStore<Task & KubeObject>;
  cronJobs: ReadonlyStore<CronJob>;
  /** Must be built with JOB_INDEXERS (indexes.ts). */
  jobs: ReadonlyStore<Job>;
  /** Must be built with POD_INDEXERS (indexes.ts). */
  pods: ReadonlyStore<Pod>;
}

export interface ReconcileDeps {
  clients: { raw: RawApi };
  caches: ReconcileCaches;
  families: () => FamiliesConfig;
  events: EventRecorder;
  metrics: Pick<OperatorMetrics, 'observeRun'>;
  clock: () => Date;
  log: Logger;
  settings: ReconcilerSettings;
  registry: TaskCatalog;
  /** The reconciler's own writes not yet in the caches; the event handlers report what arrives (event-routing.ts). */
  expectations: WriteExpectations;
}
