// Work-queue keys and the labels that tie a CronJob, Job or Pod to its BackgroundTask. Both the
// informer wiring (event → key) and the reconciler (listing a task's children) use these.
import { API_GROUP, GROUP_VERSION, KIND as TASK_KIND } from '../../crds/schema.ts';
import type { KubeObject } from './types.ts';

/** On every CronJob, Job and Pod the operator makes: the name of the owning BackgroundTask. */
export const TASK_NAME_LABEL = `${API_GROUP}/task-name`;
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'bgtask-operator';
/** The label selector of what the operator caches: only its own Jobs and Pods, not the cluster's. */
export const MANAGED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;

/** `namespace/name`, or `name` for a cluster-scoped object (client-go's MetaNamespaceKeyFunc). */
export function objectKey(obj: KubeObject): string {
  const name = obj.metadata?.name;
  if (!name) throw new Error(`object of kind ${obj.kind ?? '?'} has no metadata.name`);
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${name}` : name;
}

export function splitKey(key: string): { namespace?: string; name: string } {
  const slash = key.indexOf('/');
  if (slash < 0) return { name: key };
  if (slash === 0 || slash === key.length - 1 || key.indexOf('/', slash + 1) >= 0) throw new Error(`malformed object key ${JSON.stringify(key)}`);
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** Looks up a CronJob by namespace and name (an informer store), to follow Job → CronJob → task. */
export type CronJobLookup = (namespace: string, name: string) => KubeObject | undefined;

/**
 * The key of the BackgroundTask an object belongs to, or undefined when it belongs to none:
 * 1. an owner reference to a BackgroundTask (the controller reference first);
 * 2. an owner reference to a CronJob that a BackgroundTask owns (when lookupCronJob is given);
 * 3. the task-name label (Pods, whose owner is a Job, carry it from the Job template).
 * Owners are always in the object's own namespace.
 */
export function taskKeyOf(obj: KubeObject, lookupCronJob?: CronJobLookup): string | undefined {
  const ns = obj.metadata?.namespace;
  if (!ns) return undefined;
  const owners = [...(obj.metadata?.ownerReferences ?? [])].sort((a, b) => Number(b.controller ?? false) - Number(a.controller ?? false));
  const taskOwner = owners.find((o) => o.kind === TASK_KIND && o.apiVersion?.startsWith(`${API_GROUP}/`));
  if (taskOwner) return `${ns}/${taskOwner.name}`;
  if (lookupCronJob) {
    for (const o of owners) {
      if (o.kind !== 'CronJob' || o.apiVersion !== 'batch/v1') continue;
      const cronJob = lookupCronJob(ns, o.name);
      if (cronJob && cronJob.metadata?.uid === o.uid) {
        const key = taskKeyOf(cronJob);
        if (key) return key;
      }
    }
  }
  const label = obj.metadata?.labels?.[TASK_NAME_LABEL];
  return label ? `${ns}/${label}` : undefined;
}

/** An owner reference to a BackgroundTask, for objects the operator makes on its behalf. */
export function taskOwnerReference(task: KubeObject): { apiVersion: string; kind: string; name: string; uid: string; controller: true; blockOwnerDeletion: true } {
  const name = task.metadata?.name;
  const uid = task.metadata?.uid;
  if (!name || !uid) throw new Error('an owner reference needs the task\'s name and uid');
  return { apiVersion: GROUP_VERSION, kind: TASK_KIND, name, uid, controller: true, blockOwnerDeletion: true };
}
