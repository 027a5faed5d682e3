// The cache indexes the reconciler looks things up by. The informers that fill the caches are
// made in operator/main.ts; they must be given these indexers.
import { FAMILIES, type Family } from '../../crds/schema.ts';
import { labelIndex, type IndexFunc } from '../kube/store.ts';
import type { KubeObject } from '../kube/types.ts';
import { FAMILY_LABEL, JOB_NAME_LABEL, TASK_NAME_LABEL } from './labels.ts';

/** Jobs by `namespace/task-name`: the runs of one task. */
export const JOBS_BY_TASK = 'task';
/** Jobs by family, cluster-wide: what admission counts. */
export const JOBS_BY_FAMILY = 'family';
/** Pods by `namespace/job-name`. */
export const PODS_BY_JOB = 'job';
/** BackgroundTasks by family, cluster-wide: the tasks to reconcile again when a family's config changes. */
export const TASKS_BY_FAMILY = 'family';

export const JOB_INDEXERS: Record<string, IndexFunc<KubeObject>> = {
  [JOBS_BY_TASK]: labelIndex(TASK_NAME_LABEL),
  [JOBS_BY_FAMILY]: (job) => {
    const family = job.metadata?.labels?.[FAMILY_LABEL];
    return family ? [family] : [];
  },
};

export const POD_INDEXERS: Record<string, IndexFunc<KubeObject>> = {
  [PODS_BY_JOB]: labelIndex(JOB_NAME_LABEL),
};

export const TASK_INDEXERS: Record<string, IndexFunc<KubeObject & { spec?: { task?: string } }>> = {
  [TASKS_BY_FAMILY]: (task) => {
    const family = task.spec?.task?.split('.')[0];
    return family && (FAMILIES as readonly string[]).includes(family) ? [family as Family] : [];
  },
};
