// Which task each watch event concerns: every event of a BackgroundTask, its CronJob, its Jobs
// and their Pods becomes the task's key in the work queue (and ends any wait for the operator's
// own write of that object, see expectations.ts) — except the echo of that write, which has
// nothing new for the task. Shared by the operator and the integration
// tests' in-process operator, so both route events the same way.
import type { EventHandler } from '../kube/informer.ts';
import { objectKey, taskKeyOf } from '../kube/keys.ts';
import type { KubeObject } from '../kube/types.ts';
import type { WriteExpectations } from './expectations.ts';

interface Subscribable<T extends KubeObject> {
  addEventHandler(handler: EventHandler<T>): void;
  store: { get(namespace: string | undefined, name: string): T | undefined };
}

export interface EventRoutes {
  tasks: Subscribable<KubeObject>;
  cronJobs: Subscribable<KubeObject>;
  jobs: Subscribable<KubeObject>;
  pods: Subscribable<KubeObject>;
  queue: { add(key: string): void };
  expectations: WriteExpectations;
}

export function routeEvents({ tasks, cronJobs, jobs, pods, queue, expectations }: EventRoutes): void {
  // A task's own event, unless it is the echo of the operator's status write.
  const onTask = (t: KubeObject, resourceVersion?: string): void => {
    const key = objectKey(t);
    if (!expectations.observed('task', key, resourceVersion)) queue.add(key);
  };
  tasks.addEventHandler({ onAdd: (t) => onTask(t, t.metadata?.resourceVersion), onUpdate: (_old, t) => onTask(t, t.metadata?.resourceVersion), onDelete: (t) => onTask(t) });

  // Jobs made by a CronJob name it as their owner, not the task: look it up in the cache.
  const lookupCronJob = (ns: string, name: string): KubeObject | undefined => cronJobs.store.get(ns, name);
  const enqueueOwner = (obj: KubeObject): void => {
    const key = taskKeyOf(obj, lookupCronJob);
    if (key) queue.add(key);
  };
  const onUpdate = (old: KubeObject, obj: KubeObject, echo = false): void => {
    if (!echo) enqueueOwner(obj);
    if (taskKeyOf(old, lookupCronJob) !== taskKeyOf(obj, lookupCronJob)) enqueueOwner(old);
  };
  const children: EventHandler<KubeObject> = { onAdd: enqueueOwner, onUpdate: (old, obj) => onUpdate(old, obj), onDelete: enqueueOwner };
  jobs.addEventHandler(children);
  pods.addEventHandler(children);

  // A CronJob's event, unless it is the echo of the operator's own create or apply.
  const echoOfCronJobWrite = (c: KubeObject, resourceVersion?: string): boolean => {
    const key = taskKeyOf(c);
    return key !== undefined && expectations.observed('cronJob', key, resourceVersion);
  };
  cronJobs.addEventHandler({
    onAdd: (c) => {
      if (!echoOfCronJobWrite(c, c.metadata?.resourceVersion)) enqueueOwner(c);
    },
    onUpdate: (old, c) => onUpdate(old, c, echoOfCronJobWrite(c, c.metadata?.resourceVersion)),
    onDelete: (c) => {
      const key = taskKeyOf(c);
      if (key) expectations.observed('cronJob', key); // ends any wait; a deletion is never an echo
      enqueueOwner(c);
    },
  });
}
