// What the informers keep of Jobs and Pods. The operator holds thousands of them, and most of
// their bytes are the pod template and the pod spec, which it never reads: the CronJob (cached
// whole) is where runs are made from. Kept: all metadata (labels, annotations, owners,
// finalizers) except managedFields, the Job's spec apart from its pod template's spec (the
// runner container's name, args and command stay: a retry repeats the original's params), the
// Pod's node, and both statuses in full.
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { stripManagedFields } from './informer.ts';
import type { KubeObject, Wire } from './types.ts';

type WireJob = Wire<V1Job> & KubeObject;
type WirePod = Wire<V1Pod> & KubeObject;

export function slimJob<T extends KubeObject>(obj: T): T {
  const job = stripManagedFields(obj) as unknown as WireJob;
  const podSpec = job.spec?.template?.spec;
  if (job.spec?.template && podSpec) {
    job.spec.template.spec = {
      containers: (podSpec.containers ?? []).map((c) => ({
        name: c.name,
        ...(c.command ? { command: c.command } : {}),
        ...(c.args ? { args: c.args } : {}),
      })),
    };
  }
  return job as unknown as T;
}

export function slimPod<T extends KubeObject>(obj: T): T {
  const pod = stripManagedFields(obj) as unknown as WirePod;
  if (pod.spec) {
    pod.spec = { containers: (pod.spec.containers ?? []).map((c) => ({ name: c.name })), ...(pod.spec.nodeName ? { nodeName: pod.spec.nodeName } : {}) };
  }
  return pod as unknown as T;
}
