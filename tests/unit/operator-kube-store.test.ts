import { describe, expect, it } from 'vitest';
import { TASK_NAME_LABEL } from '../../operator/kube/keys.ts';
import { OWNER_UID_INDEX, Store, labelIndex, ownerUidIndex } from '../../operator/kube/store.ts';
import type { KubeObject } from '../../operator/kube/types.ts';

function job(ns: string, name: string, opts: { task?: string; owner?: string; rv?: string } = {}): KubeObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      namespace: ns,
      name,
      resourceVersion: opts.rv ?? '1',
      labels: opts.task ? { [TASK_NAME_LABEL]: opts.task } : {},
      ownerReferences: opts.owner ? [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'cj', uid: opts.owner }] : [],
    },
  };
}

const TASK_INDEX = 'task';

function newStore(): Store<KubeObject> {
  return new Store<KubeObject>({ [OWNER_UID_INDEX]: ownerUidIndex, [TASK_INDEX]: labelIndex(TASK_NAME_LABEL) });
}

describe('Store', () => {
  it('gets by namespace and name, and by key', () => {
    const s = newStore();
    const a = job('ns1', 'a');
    expect(s.upsert(a)).toBeUndefined();
    expect(s.get('ns1', 'a')).toBe(a);
    expect(s.getByKey('ns1/a')).toBe(a);
    expect(s.get('ns2', 'a')).toBeUndefined();
    expect(s.size).toBe(1);
  });

  it('lists everything or one namespace', () => {
    const s = newStore();
    s.upsert(job('ns1', 'a'));
    s.upsert(job('ns1', 'b'));
    s.upsert(job('ns2', 'c'));
    expect(s.list().map((o) => o.metadata?.name).sort()).toEqual(['a', 'b', 'c']);
    expect(s.list('ns1').map((o) => o.metadata?.name).sort()).toEqual(['a', 'b']);
    expect(s.list('nope')).toEqual([]);
  });

  it('indexes by owner UID and by label within the namespace', () => {
    const s = newStore();
    s.upsert(job('ns1', 'a', { task: 't1', owner: 'u1' }));
    s.upsert(job('ns1', 'b', { task: 't1', owner: 'u2' }));
    s.upsert(job('ns2', 'c', { task: 't1', owner: 'u1' }));
    expect(s.byIndex(OWNER_UID_INDEX, 'u1').map((o) => o.metadata?.name).sort()).toEqual(['a', 'c']);
    expect(s.byIndex(TASK_INDEX, 'ns1/t1').map((o) => o.metadata?.name).sort()).toEqual(['a', 'b']);
    expect(s.byIndex(TASK_INDEX, 'ns2/t1').map((o) => o.metadata?.name)).toEqual(['c']);
    expect(s.byIndex(TASK_INDEX, 'ns1/other')).toEqual([]);
  });

  it('re-files an object whose indexed values change, and returns the one replaced', () => {
    const s = newStore();
    const v1 = job('ns1', 'a', { task: 't1', owner: 'u1', rv: '1' });
    const v2 = job('ns1', 'a', { task: 't2', owner: 'u2', rv: '2' });
    s.upsert(v1);
    expect(s.upsert(v2)).toBe(v1);
    expect(s.byIndex(TASK_INDEX, 'ns1/t1')).toEqual([]);
    expect(s.byIndex(OWNER_UID_INDEX, 'u1')).toEqual([]);
    expect(s.byIndex(TASK_INDEX, 'ns1/t2')).toEqual([v2]);
    expect(s.size).toBe(1);
  });

  it('removes an object from every index and leaves no empty buckets', () => {
    const s = newStore();
    const a = job('ns1', 'a', { task: 't1', owner: 'u1' });
    s.upsert(a);
    expect(s.remove('ns1/a')).toBe(a);
    expect(s.remove('ns1/a')).toBeUndefined();
    expect(s.byIndex(TASK_INDEX, 'ns1/t1')).toEqual([]);
    expect(s.list('ns1')).toEqual([]);
    expect(s.size).toBe(0);
    const internals = s as unknown as { indices: Map<string, Map<string, Set<string>>>; byNamespace: Map<string, Set<string>> };
    expect(internals.byNamespace.size).toBe(0);
    for (const index of internals.indices.values()) expect(index.size).toBe(0);
  });

  it('rejects an unknown index name', () => {
    expect(() => newStore().byIndex('nope', 'x')).toThrow(/no index named/);
  });
});

describe('compacting transforms', () => {
  it('share one copy of equal short strings between objects, and drop managedFields', async () => {
    const { StringPool, compact, internStrings } = await import('../../operator/kube/transforms.ts');
    const parse = () =>
      JSON.parse('{"metadata":{"name":"a","managedFields":[{"manager":"x"}],"labels":{"app":"same-value"}},"spec":{"image":"bgtask.local/task-runner:dev"}}');
    const a = compact(parse());
    const b = compact(parse());
    expect(a.metadata.managedFields).toBeUndefined();
    expect(a).toEqual(b);
    // Equal content either way; what the pool changes is identity, which only memory can see.
    const pool = new StringPool(2);
    const x = internStrings({ v: 'one', w: 'two' }, pool);
    expect(pool.size).toBe(2);
    internStrings({ v: 'three' }, pool); // full: starts over
    expect(pool.size).toBe(1);
    expect(x).toEqual({ v: 'one', w: 'two' });
    expect(internStrings({ long: 'x'.repeat(300) }, pool).long).toHaveLength(300);
    expect(pool.size).toBe(1);
  });
});

describe('slimJob / slimPod', () => {
  it('keep metadata, status and the runner\'s args; drop the pod spec', async () => {
    const { slimJob, slimPod } = await import('../../operator/kube/transforms.ts');
    const job = slimJob({
      kind: 'Job',
      metadata: { name: 'j', namespace: 'ns', labels: { a: 'b' }, managedFields: [{ manager: 'm' }] },
      spec: {
        suspend: true,
        template: {
          metadata: { annotations: { trigger: 'Retry' } },
          spec: { containers: [{ name: 'task-runner', image: 'img', args: ['run', 'x'], env: [{ name: 'E', value: 'v' }] }], volumes: [{ name: 'v' }] },
        },
      },
      status: { active: 1 },
    } as any) as any;
    expect(job.metadata).toEqual({ name: 'j', namespace: 'ns', labels: { a: 'b' } });
    expect(job.spec).toEqual({ suspend: true, template: { metadata: { annotations: { trigger: 'Retry' } }, spec: { containers: [{ name: 'task-runner', args: ['run', 'x'] }] } } });
    expect(job.status).toEqual({ active: 1 });
    const pod = slimPod({
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'ns' },
      spec: { nodeName: 'n1', containers: [{ name: 'task-runner', image: 'img', env: [] }], volumes: [] },
      status: { phase: 'Failed', containerStatuses: [{ name: 'task-runner', state: { terminated: { exitCode: 137, reason: 'OOMKilled' } } }] },
    } as any) as any;
    expect(pod.spec).toEqual({ containers: [{ name: 'task-runner' }], nodeName: 'n1' });
    expect(pod.status.containerStatuses[0].state.terminated.reason).toBe('OOMKilled');
  });
});

describe('compactCronJob', () => {
  it('keeps metadata, the spec without its job template, and status; marks what a POST of the operator made', async () => {
    const { compactCronJob } = await import('../../operator/kube/transforms.ts');
    const { ownsByUpdate } = await import('../../operator/kube/field-ownership.ts');
    const { FIELD_MANAGER } = await import('../../operator/kube/apply.ts');
    const cronJob = compactCronJob({
      kind: 'CronJob',
      metadata: { name: 'c', namespace: 'ns', generation: 2, annotations: { h: '1' }, managedFields: [{ manager: FIELD_MANAGER, operation: 'Update' }] },
      spec: {
        schedule: '0 3 * * *',
        suspend: false,
        jobTemplate: { spec: { template: { spec: { containers: [{ name: 'task-runner', image: 'img' }] } } } },
      },
      status: { lastScheduleTime: '2026-11-29T03:00:00Z' },
    } as any) as any;
    expect(cronJob.spec).toEqual({ schedule: '0 3 * * *', suspend: false });
    expect(cronJob.metadata).toMatchObject({ name: 'c', namespace: 'ns', generation: 2, annotations: { h: '1' } });
    expect(cronJob.status).toEqual({ lastScheduleTime: '2026-11-29T03:00:00Z' });
    expect(ownsByUpdate(cronJob, FIELD_MANAGER)).toBe(true);
  });
});
