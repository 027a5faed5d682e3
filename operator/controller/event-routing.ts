// Which task each watch event concerns: every event of a BackgroundTask, its CronJob, its Jobs
// and their Pods becomes the task's key in the work queue (and ends any wait for the operator's
// own write of that object, see expectations.ts). Shared by the operator and the integration
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
  const onTask = (t: KubeObject): void => {
    const key = objectKey(t);
    expectations.observed('task', key);
    queue.add(key);
  };
  tasks.addEventHandler({ onAdd: onTask, onUpdate: (_old, t) => onTask(t), onDelete: onTask });

  // Jobs made by a CronJob name it as their owner, not the task: look it up in the cache.
  const lookupCronJob = (ns: string, name: string): KubeObject | undefined => cronJobs.store.get(ns, name);
  const enqueueOwner = (obj: KubeObject): void => {
    const key = taskKeyOf(obj, lookupCronJob);
    if (key) queue.add(key);
  };
  const children: EventHandler<KubeObject> = {
    onAdd: enqueueOwner,
    onUpdate: (old, obj) => {
      enqueueOwner(obj);
      if (taskKeyOf(old, lookupCronJob) !== taskKeyOf(obj, lookupCronJob)) enqueueOwner(old);
    },
    onDelete: enqueueOwner,
  };
  const onCronJob = (c: KubeObject): void => {
    const key = taskKeyOf(c);
    if (key) expectations.observed('cronJob', key);
  };
  cronJobs.addEventHandler({ onAdd: onCronJob, onUpdate: (_old, c) => onCronJob(c), onDelete: onCronJob });
  cronJobs.addEventHandler(children);
  jobs.addEventHandler(children);
  pods.addEventHandler(children);
}
