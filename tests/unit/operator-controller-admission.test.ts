import { describe, expect, it } from 'vitest';
import { FamilyAdmission, planAdmission } from '../../operator/controller/admission.ts';
import type { Job } from '../../operator/controller/deps.ts';
import { JOB_INDEXERS } from '../../operator/controller/indexes.ts';
import { Store } from '../../operator/kube/store.ts';
import { makeJob, makeTask } from './operator-controller-fixtures.ts';

const at = (minute: number) => `2026-11-28T08:${String(minute).padStart(2, '0')}:00Z`;
const waiting = (name: string, minute: number, extra: Parameters<typeof makeJob>[1] = {}) => makeJob(name, { suspended: true, createdAt: at(minute), ...extra });
const running = (name: string, minute: number) => makeJob(name, { createdAt: at(minute) });
const names = (jobs: readonly Job[]) => jobs.map((j) => j.metadata?.name);
const always = () => true;

describe('planAdmission', () => {
  it.each([
    { name: 'admits the oldest while slots are free', jobs: [waiting('c', 3), waiting('a', 1), waiting('b', 2)], concurrency: 2, admit: ['a', 'b'], wait: ['c'], running: 0 },
    { name: 'counts running Jobs against the limit', jobs: [running('r', 0), waiting('a', 1), waiting('b', 2)], concurrency: 2, admit: ['a'], wait: ['b'], running: 1 },
    { name: 'admits nothing when full', jobs: [running('r1', 0), running('r2', 0), waiting('a', 1)], concurrency: 2, admit: [], wait: ['a'], running: 2 },
    { name: 'more running than allowed (the limit was lowered): nothing, nothing stopped', jobs: [running('r1', 0), running('r2', 0), waiting('a', 1)], concurrency: 1, admit: [], wait: ['a'], running: 2 },
    {
      name: 'finished Jobs free their slot',
      jobs: [makeJob('done', { createdAt: at(0), complete: at(5) }), makeJob('failed', { createdAt: at(0), failed: { at: at(5) } }), waiting('a', 1)],
      concurrency: 1,
      admit: ['a'],
      wait: [],
      running: 0,
    },
    { name: 'concurrency 0 pauses the family', jobs: [waiting('a', 1)], concurrency: 0, admit: [], wait: ['a'], running: 0 },
    { name: 'same creation second: by namespace/name', jobs: [waiting('b', 1), waiting('a', 1)], concurrency: 1, admit: ['a'], wait: ['b'], running: 0 },
    { name: 'a waiting Job being deleted is neither admitted nor listed', jobs: [waiting('gone', 0, { deleting: true }), waiting('a', 1)], concurrency: 1, admit: ['a'], wait: [], running: 0 },
  ])('$name', ({ jobs, concurrency, admit, wait, running: count }) => {
    const plan = planAdmission(jobs, concurrency, new Set(), always);
    expect(names(plan.admit)).toEqual(admit);
    expect(names(plan.waiting)).toEqual(wait);
    expect(plan.running).toBe(count);
  });

  it('counts Jobs it just admitted that the cache still shows suspended', () => {
    const jobs = [waiting('a', 1), waiting('b', 2)];
    const plan = planAdmission(jobs, 1, new Set(['uid-a']), always);
    expect(plan.running).toBe(1);
    expect(plan.admit).toEqual([]);
  });

  it('runs the Jobs of one exclusive task one at a time, and lets other tasks take the slots', () => {
    const other = makeTask({ name: 'other', uid: 'uid-other' });
    const taskOf = (job: Job) => job.metadata?.labels?.['workers.personal-assistant.io/task-name'];
    // digest's retry runs, so its scheduled run waits; of other's two runs, the older goes first.
    const jobs = [running('digest-retry', 0), waiting('digest-sched', 1), waiting('other-1', 2, { task: other }), waiting('other-2', 3, { task: other })];
    const plan = planAdmission(jobs, 4, new Set(), always, taskOf);
    expect(names(plan.admit)).toEqual(['other-1']);
    expect(names(plan.waiting)).toEqual(['digest-sched', 'other-2']);
    // Without the rule every one of them takes a slot.
    expect(names(planAdmission(jobs, 4, new Set(), always).admit)).toEqual(['digest-sched', 'other-1', 'other-2']);
  });

  it('skips Jobs that may not run (task suspended) without spending a slot on them', () => {
    const plan = planAdmission([waiting('held', 1), waiting('b', 2)], 1, new Set(), (job) => job.metadata?.name !== 'held');
    expect(names(plan.admit)).toEqual(['b']);
    expect(names(plan.waiting)).toEqual(['held']);
  });
});

describe('FamilyAdmission', () => {
  function setup(jobs: Job[]) {
    const store = new Store<Job>(JOB_INDEXERS);
    for (const job of jobs) store.upsert(job);
    const admitted: string[] = [];
    let release: () => void = () => undefined;
    let gate: Promise<void> = Promise.resolve();
    const admission = new FamilyAdmission({
      jobs: store,
      admit: async (job) => {
        await gate;
        admitted.push(job.metadata!.name!);
        return job;
      },
      now: () => Date.parse('2026-11-28T09:00:00Z'),
    });
    return {
      store,
      admitted,
      admission,
      hold() {
        gate = new Promise((r) => (release = r));
      },
      release: () => release(),
    };
  }

  it('never admits past the limit when reconciles of several tasks admit at once', async () => {
    const other = makeTask({ name: 'other', uid: 'uid-other' });
    const t = setup([waiting('a', 1), waiting('b', 2), waiting('c', 3, { task: other })]);
    t.hold();
    const first = t.admission.admit('email', 1, always);
    const second = t.admission.admit('email', 1, always);
    const third = t.admission.admit('email', 1, always);
    t.release();
    const outcomes = await Promise.all([first, second, third]);
    expect(t.admitted).toEqual(['a']);
    expect(outcomes.map((o) => names(o.admit))).toEqual([['a'], [], []]);
    expect(outcomes[1]!.running).toBe(1);
  });

  it('admits the next one once the cache shows the first finished', async () => {
    const t = setup([waiting('a', 1), waiting('b', 2)]);
    await t.admission.admit('email', 1, always);
    t.store.upsert(makeJob('a', { createdAt: at(1), complete: at(9) }));
    const next = await t.admission.admit('email', 1, always);
    expect(names(next.admit)).toEqual(['b']);
    expect(t.admitted).toEqual(['a', 'b']);
  });

  it('keeps families apart', async () => {
    const cleanup = makeTask({ name: 'cleanup', uid: 'uid-cleanup', spec: { task: 'maintenance.cleanup-old-sessions' } });
    const t = setup([waiting('a', 1), waiting('m', 1, { task: cleanup })]);
    await t.admission.admit('email', 1, always);
    const maintenance = await t.admission.admit('maintenance', 1, always);
    expect(names(maintenance.admit)).toEqual(['m']);
  });

  it('does not count a Job that was deleted before it could be admitted', async () => {
    const store = new Store<Job>(JOB_INDEXERS);
    store.upsert(waiting('gone', 1));
    store.upsert(waiting('b', 2));
    const admission = new FamilyAdmission({ jobs: store, admit: async (job) => (job.metadata?.name === 'gone' ? undefined : job), now: () => 0 });
    const first = await admission.admit('email', 1, always);
    expect(names(first.admit)).toEqual(['b']); // the slot it would have taken goes to the next
    expect(names(first.waiting)).toEqual([]);
  });

  it('tries the next Job when the apiserver refuses one, and reports the refusal', async () => {
    const store = new Store<Job>(JOB_INDEXERS);
    for (const job of [waiting('refused', 1), waiting('b', 2), waiting('c', 3)]) store.upsert(job);
    const refusal = Object.assign(new Error('exceeded quota: jobs'), { code: 403 });
    const admission = new FamilyAdmission({
      jobs: store,
      admit: async (job) => {
        if (job.metadata?.name === 'refused') throw refusal;
        return job;
      },
      now: () => 0,
    });
    const outcome = await admission.admit('email', 1, always);
    expect(names(outcome.admit)).toEqual(['b']);
    expect(outcome.failed.map((f) => [f.job.metadata?.name, f.error])).toEqual([['refused', refusal]]);
    expect(names(outcome.waiting)).toEqual(['refused', 'c']);
    // b now holds the only slot: c waits, and refused is tried again when a slot frees.
    expect(names((await admission.admit('email', 1, always)).admit)).toEqual([]);
  });

  it('stops at a failure that would refuse every Job alike (the apiserver overloaded), leaving the rest waiting', async () => {
    const store = new Store<Job>(JOB_INDEXERS);
    for (const job of [waiting('a', 1), waiting('b', 2), waiting('c', 3)]) store.upsert(job);
    const tried: string[] = [];
    const admission = new FamilyAdmission({
      jobs: store,
      admit: async (job) => {
        tried.push(job.metadata!.name!);
        throw Object.assign(new Error('the server is currently unable to handle the request'), { code: 503 });
      },
      now: () => 0,
    });
    const outcome = await admission.admit('email', 2, always);
    expect(tried).toEqual(['a']);
    expect(names(outcome.admit)).toEqual([]);
    expect(names(outcome.waiting)).toEqual(['a', 'b', 'c']);
    expect(outcome.failed).toHaveLength(1);
  });
});
