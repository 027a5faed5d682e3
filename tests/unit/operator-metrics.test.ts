// The per-task and per-family gauges of /metrics, computed at scrape time from the caches:
// consecutive failures, the schedule interval the dead-man's switch compares against, and the age
// of the oldest run waiting for a family slot.
import { describe, expect, it } from 'vitest';
import { DEFAULT_FAMILIES } from '../../operator/config/families.ts';
import type { Job, Task } from '../../operator/controller/deps.ts';
import { JOB_INDEXERS, TASK_INDEXERS } from '../../operator/controller/indexes.ts';
import { Store } from '../../operator/kube/store.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { createMetrics, familyQueues, taskSnapshot, type FamilyQueue, type TaskSnapshot } from '../../operator/metrics.ts';
import { makeJob, makeTask } from './operator-controller-fixtures.ts';

const NOW = Date.parse('2026-11-28T12:00:00Z');

function snapshot(over: Partial<TaskSnapshot> = {}): TaskSnapshot {
  return {
    namespace: 'ns',
    name: 'digest',
    task: 'email.digest',
    family: 'email',
    lastSuccessfulTime: undefined,
    createdAt: undefined,
    consecutiveFailures: undefined,
    schedule: undefined,
    ...over,
  };
}

async function scrape(opts: { tasks?: TaskSnapshot[]; queues?: FamilyQueue[]; now?: () => number } = {}): Promise<string> {
  const metrics = createMetrics({ now: opts.now ?? (() => NOW), defaultMetrics: false });
  metrics.setTaskSource(() => opts.tasks ?? []);
  metrics.setFamilyQueueSource(() => opts.queues ?? []);
  return metrics.registry.metrics();
}

/** The sample lines of one metric, without HELP/TYPE. */
const samples = (text: string, name: string) => text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));

describe('bgtask_consecutive_failures', () => {
  it('reports status.consecutiveFailures of each task with namespace, name, task and family', async () => {
    const text = await scrape({
      tasks: [
        snapshot({ consecutiveFailures: 3 }),
        snapshot({ name: 'backup', task: 'file.backup-user-data', family: 'file', consecutiveFailures: 0 }),
        snapshot({ name: 'fresh', consecutiveFailures: undefined }),
      ],
    });
    expect(samples(text, 'bgtask_consecutive_failures')).toEqual([
      'bgtask_consecutive_failures{namespace="ns",name="digest",task="email.digest",family="email"} 3',
      'bgtask_consecutive_failures{namespace="ns",name="backup",task="file.backup-user-data",family="file"} 0',
    ]);
  });

  it('follows the cache: a task that is gone loses its series', async () => {
    let tasks = [snapshot({ consecutiveFailures: 2 })];
    const metrics = createMetrics({ now: () => NOW, defaultMetrics: false });
    metrics.setTaskSource(() => tasks);
    expect(samples(await metrics.registry.metrics(), 'bgtask_consecutive_failures')).toHaveLength(1);
    tasks = [];
    expect(samples(await metrics.registry.metrics(), 'bgtask_consecutive_failures')).toEqual([]);
  });
});

describe('bgtask_task_age_seconds', () => {
  it('reports how long ago each task was created, succeeded or not; a task without a creation time not at all', async () => {
    const text = await scrape({
      tasks: [
        snapshot({ createdAt: '2026-11-28T10:00:00Z' }),
        snapshot({ name: 'backup', task: 'file.backup-user-data', family: 'file', createdAt: '2026-11-20T12:00:00Z', lastSuccessfulTime: '2026-11-28T11:00:00Z' }),
        snapshot({ name: 'unsaved', createdAt: undefined }),
      ],
    });
    expect(samples(text, 'bgtask_task_age_seconds')).toEqual([
      'bgtask_task_age_seconds{namespace="ns",name="digest",task="email.digest"} 7200',
      'bgtask_task_age_seconds{namespace="ns",name="backup",task="file.backup-user-data"} 691200',
    ]);
  });
});

describe('bgtask_schedule_interval_seconds', () => {
  it('reports the expected interval of each scheduled task in its time zone; suspended tasks and invalid schedules not at all', async () => {
    const text = await scrape({
      tasks: [
        snapshot({ schedule: { expression: '*/5 * * * *', timeZone: undefined } }),
        snapshot({ name: 'weekdays', schedule: { expression: '0 2 * * 1-5', timeZone: 'Europe/Berlin' } }),
        snapshot({ name: 'weekly', task: 'file.backup-user-data', family: 'file', schedule: { expression: '0 1 * * 0', timeZone: 'Etc/UTC' } }),
        snapshot({ name: 'suspended', schedule: undefined }),
        snapshot({ name: 'bad-zone', schedule: { expression: '0 4 * * *', timeZone: 'Mars/Olympus_Mons' } }),
        snapshot({ name: 'never', schedule: { expression: '0 0 30 2 *', timeZone: undefined } }),
      ],
    });
    expect(samples(text, 'bgtask_schedule_interval_seconds')).toEqual([
      'bgtask_schedule_interval_seconds{namespace="ns",name="digest",task="email.digest",family="email"} 300',
      'bgtask_schedule_interval_seconds{namespace="ns",name="weekdays",task="email.digest",family="email"} 259200',
      'bgtask_schedule_interval_seconds{namespace="ns",name="weekly",task="file.backup-user-data",family="file"} 604800',
    ]);
  });
});

describe('bgtask_oldest_queued_run_seconds', () => {
  it('reports every family given, 0 where nothing waits', async () => {
    const text = await scrape({
      queues: [
        { family: 'ai', oldestWaitingSince: NOW - 90_000 },
        { family: 'email', oldestWaitingSince: undefined },
        { family: 'file', oldestWaitingSince: NOW + 5_000 }, // a clock a little behind the apiserver's
      ],
    });
    expect(samples(text, 'bgtask_oldest_queued_run_seconds')).toEqual([
      'bgtask_oldest_queued_run_seconds{family="ai"} 90',
      'bgtask_oldest_queued_run_seconds{family="email"} 0',
      'bgtask_oldest_queued_run_seconds{family="file"} 0',
    ]);
  });
});

describe('the sources main.ts wires', () => {
  it('taskSnapshot reads status and spec, and has no schedule while the task is suspended', () => {
    const task = makeTask({
      spec: { schedule: '0 8 * * *', timeZone: 'Europe/Berlin' },
      status: { consecutiveFailures: 4, lastSuccessfulTime: '2026-11-27T08:00:00Z' },
    });
    expect(taskSnapshot(task)).toEqual({
      namespace: 'assistant',
      name: 'digest',
      task: 'email.digest',
      family: 'email',
      lastSuccessfulTime: '2026-11-27T08:00:00Z',
      createdAt: '2026-11-01T00:00:00Z',
      consecutiveFailures: 4,
      schedule: { expression: '0 8 * * *', timeZone: 'Europe/Berlin' },
    });
    expect(taskSnapshot(makeTask({ spec: { suspend: true } })).schedule).toBeUndefined();
    expect(taskSnapshot(makeTask()).consecutiveFailures).toBeUndefined();
  });

  it('familyQueues: the oldest Job waiting for a slot, per configured family; not admitted, finished, deleted or held by a suspended task', () => {
    const tasks = new Store<Task & KubeObject>(TASK_INDEXERS);
    const jobs = new Store<Job>(JOB_INDEXERS);
    const digest = makeTask({ name: 'digest' });
    const paused = makeTask({ name: 'paused', uid: 'uid-paused', spec: { suspend: true } });
    const cleanup = makeTask({ name: 'cleanup', uid: 'uid-cleanup', spec: { task: 'maintenance.cleanup-old-sessions' } });
    for (const t of [digest, paused, cleanup]) tasks.upsert(t);
    const add = (job: Job) => jobs.upsert(job);
    add(makeJob('running', { task: digest, createdAt: '2026-11-28T09:00:00Z' })); // admitted
    add(makeJob('done-waiting', { task: digest, createdAt: '2026-11-28T09:30:00Z', suspended: true, complete: '2026-11-28T10:00:00Z' }));
    add(makeJob('deleting', { task: digest, createdAt: '2026-11-28T09:40:00Z', suspended: true, deleting: true }));
    add(makeJob('held', { task: paused, createdAt: '2026-11-28T09:45:00Z', suspended: true })); // its task is suspended
    add(makeJob('manual', { task: paused, createdAt: '2026-11-28T11:00:00Z', suspended: true, trigger: 'Manual' })); // run-now: waits for a slot
    add(makeJob('waiting', { task: digest, createdAt: '2026-11-28T10:00:00Z', suspended: true }));
    add(makeJob('orphan', { task: makeTask({ name: 'gone' }), createdAt: '2026-11-28T08:00:00Z', suspended: true })); // no task
    add(makeJob('cleanup-1', { task: cleanup, createdAt: '2026-11-28T11:58:00Z', suspended: true }));

    const queues = familyQueues(Object.keys(DEFAULT_FAMILIES), jobs, tasks);
    expect(queues).toEqual([
      { family: 'ai', oldestWaitingSince: undefined },
      { family: 'email', oldestWaitingSince: Date.parse('2026-11-28T10:00:00Z') },
      { family: 'file', oldestWaitingSince: undefined },
      { family: 'sync', oldestWaitingSince: undefined },
      { family: 'maintenance', oldestWaitingSince: Date.parse('2026-11-28T11:58:00Z') },
    ]);
  });

  it('end to end: a scrape over caches shows the waiting run\'s age per family', async () => {
    const tasks = new Store<Task & KubeObject>(TASK_INDEXERS);
    const jobs = new Store<Job>(JOB_INDEXERS);
    const digest = makeTask({ status: { consecutiveFailures: 1 } });
    tasks.upsert(digest);
    jobs.upsert(makeJob('waiting', { task: digest, createdAt: '2026-11-28T11:55:00Z', suspended: true }));
    const metrics = createMetrics({ now: () => NOW, defaultMetrics: false });
    metrics.setTaskSource(() => tasks.list().map(taskSnapshot));
    metrics.setFamilyQueueSource(() => familyQueues(Object.keys(DEFAULT_FAMILIES), jobs, tasks));
    const text = await metrics.registry.metrics();
    expect(samples(text, 'bgtask_oldest_queued_run_seconds')).toContain('bgtask_oldest_queued_run_seconds{family="email"} 300');
    expect(samples(text, 'bgtask_oldest_queued_run_seconds')).toHaveLength(5);
    expect(samples(text, 'bgtask_consecutive_failures')).toEqual(['bgtask_consecutive_failures{namespace="assistant",name="digest",task="email.digest",family="email"} 1']);
    expect(samples(text, 'bgtask_schedule_interval_seconds')).toEqual(['bgtask_schedule_interval_seconds{namespace="assistant",name="digest",task="email.digest",family="email"} 86400']);
  });
});
