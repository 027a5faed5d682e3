// Which watch events put a task in the work queue: every event of the task and its objects,
// except the echo of the operator's own write.
import { describe, expect, it } from 'vitest';
import { routeEvents } from '../../operator/controller/event-routing.ts';
import { ABSENT, WriteExpectations } from '../../operator/controller/expectations.ts';
import type { EventHandler } from '../../operator/kube/informer.ts';
import type { KubeObject } from '../../operator/kube/types.ts';

function source() {
  const handlers: EventHandler<KubeObject>[] = [];
  const objects = new Map<string, KubeObject>();
  return {
    addEventHandler: (h: EventHandler<KubeObject>) => handlers.push(h),
    store: { get: (ns: string | undefined, name: string) => objects.get(`${ns}/${name}`) },
    add(o: KubeObject) {
      objects.set(`${o.metadata?.namespace}/${o.metadata?.name}`, o);
      for (const h of handlers) h.onAdd?.(o);
    },
    update(old: KubeObject, o: KubeObject) {
      objects.set(`${o.metadata?.namespace}/${o.metadata?.name}`, o);
      for (const h of handlers) h.onUpdate?.(old, o);
    },
    delete(o: KubeObject) {
      objects.delete(`${o.metadata?.namespace}/${o.metadata?.name}`);
      for (const h of handlers) h.onDelete?.(o);
    },
  };
}

const task = (rv: string): KubeObject => ({ apiVersion: 'workers.personal-assistant.io/v1alpha1', kind: 'BackgroundTask', metadata: { namespace: 'ns', name: 'a', uid: 'u1', resourceVersion: rv } });
const cronJob = (rv: string): KubeObject => ({
  apiVersion: 'batch/v1',
  kind: 'CronJob',
  metadata: { namespace: 'ns', name: 'a', resourceVersion: rv, ownerReferences: [{ apiVersion: 'workers.personal-assistant.io/v1alpha1', kind: 'BackgroundTask', name: 'a', uid: 'u1', controller: true }] },
});

function routed() {
  const added: string[] = [];
  const sources = { tasks: source(), cronJobs: source(), jobs: source(), pods: source() };
  const expectations = new WriteExpectations();
  routeEvents({ ...sources, queue: { add: (k) => added.push(k) }, expectations });
  return { ...sources, added, expectations };
}

describe('routeEvents', () => {
  it('queues the task for its own events and its CronJob events', () => {
    const r = routed();
    r.tasks.add(task('1'));
    r.cronJobs.add(cronJob('2'));
    r.cronJobs.update(cronJob('2'), cronJob('3'));
    r.cronJobs.delete(cronJob('3'));
    r.tasks.delete(task('1'));
    expect(r.added).toEqual(['ns/a', 'ns/a', 'ns/a', 'ns/a', 'ns/a']);
  });

  it('does not queue the task for the echo of its CronJob create or its status patch, but does for what follows', () => {
    const r = routed();
    r.expectations.expect('cronJob', 'ns/a', ABSENT, 0, '2');
    r.expectations.expect('task', 'ns/a', '1', 0, '3');
    r.cronJobs.add(cronJob('2'));
    r.tasks.update(task('1'), task('3'));
    expect(r.added).toEqual([]);
    r.cronJobs.update(cronJob('2'), cronJob('4')); // the CronJob controller's status write
    r.tasks.update(task('3'), task('5')); // a user's change
    expect(r.added).toEqual(['ns/a', 'ns/a']);
  });

  it('queues the task for an event that is not the echo', () => {
    const r = routed();
    r.expectations.expect('task', 'ns/a', '1', 0, '3');
    r.tasks.update(task('1'), task('2')); // someone else's write landed first
    expect(r.added).toEqual(['ns/a']);
  });
});
