// The reconciler's writes besides apply and status (operator/kube/apply.ts): Jobs it creates,
// admits, releases and deletes, and the run-now bookkeeping annotation on a task. Each error
// names the object and carries the API error as its cause.
import { HttpMethod, PatchStrategy } from '@kubernetes/client-node';
import { isConflict, isNotFound } from '../kube/errors.ts';
import { objectKey } from '../kube/keys.ts';
import type { RawApi } from '../kube/raw-api.ts';
import { BACKGROUND_TASKS, JOBS, collectionPath, objectPath } from '../kube/resources.ts';
import type { Job, Task } from './deps.ts';
import { RUN_FINALIZER } from './labels.ts';

export interface JobWrites {
  /** Creates a Job; resolves to undefined when one of that name already exists (made earlier, maybe by a previous operator). */
  create(job: Job, fieldManager: string): Promise<Job | undefined>;
  /** Unsuspends a Job and adds the run-accounting finalizer; undefined when the Job is gone. */
  admit(job: Job, fieldManager: string): Promise<Job | undefined>;
  /** Removes the run-accounting finalizer; a Job already gone is fine. */
  release(job: Job, fieldManager: string): Promise<void>;
  /**
   * Deletes a Job; a Job already gone is fine. In the background (the default) its pods are
   * deleted once it is gone; in the foreground they are stopped first, and it goes after them.
   */
  remove(job: Job, propagation?: 'Background' | 'Foreground'): Promise<void>;
}

export interface TaskWrites {
  /** Sets (or with null removes) annotations of a task: metadata only, never its spec. Resolves to the task as written. */
  annotate(task: Task, annotations: Record<string, string | null>, fieldManager: string): Promise<Task>;
}

function jobPath(job: Job): string {
  const name = job.metadata?.name;
  if (!name) throw new Error('the Job has no metadata.name');
  return objectPath(JOBS, job.metadata?.namespace, name);
}

export function jobWrites(raw: RawApi): JobWrites {
  return {
    async create(job, fieldManager) {
      try {
        return await raw.request<Job>(HttpMethod.POST, collectionPath(JOBS, job.metadata?.namespace), { body: job, query: { fieldManager } });
      } catch (err) {
        if (isConflict(err)) return undefined;
        throw new Error(`creating Job ${objectKey(job)} failed`, { cause: err });
      }
    },
    async admit(job, fieldManager) {
      try {
        // Strategic merge: `finalizers` merges as a set, so another finalizer on the Job stays.
        return await raw.request<Job>(HttpMethod.PATCH, jobPath(job), {
          body: { metadata: { finalizers: [RUN_FINALIZER] }, spec: { suspend: false } },
          contentType: PatchStrategy.StrategicMergePatch,
          query: { fieldManager },
        });
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw new Error(`admitting Job ${objectKey(job)} failed`, { cause: err });
      }
    },
    async release(job, fieldManager) {
      try {
        await raw.request(HttpMethod.PATCH, jobPath(job), {
          // Strategic merge's directive for removing one value from a list of strings.
          body: { metadata: { '$deleteFromPrimitiveList/finalizers': [RUN_FINALIZER] } },
          contentType: PatchStrategy.StrategicMergePatch,
          query: { fieldManager },
        });
      } catch (err) {
        if (isNotFound(err)) return;
        throw new Error(`removing the finalizer of Job ${objectKey(job)} failed`, { cause: err });
      }
    },
    async remove(job, propagation = 'Background') {
      try {
        await raw.request(HttpMethod.DELETE, jobPath(job), { body: { propagationPolicy: propagation } });
      } catch (err) {
        if (isNotFound(err)) return;
        throw new Error(`deleting Job ${objectKey(job)} failed`, { cause: err });
      }
    },
  };
}

export function taskWrites(raw: RawApi): TaskWrites {
  return {
    async annotate(task, annotations, fieldManager) {
      const name = task.metadata.name;
      if (!name) throw new Error('the BackgroundTask has no metadata.name');
      try {
        return await raw.request<Task>(HttpMethod.PATCH, objectPath(BACKGROUND_TASKS, task.metadata.namespace, name), {
          body: { metadata: { annotations } },
          contentType: PatchStrategy.MergePatch,
          query: { fieldManager },
        });
      } catch (err) {
        throw new Error(`annotating BackgroundTask ${task.metadata.namespace}/${name} failed`, { cause: err });
      }
    },
  };
}
