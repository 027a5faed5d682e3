import { describe, expect, it } from 'vitest';
import { FOREGROUND_DELETION, RELEASE_UNCOUNTED_AFTER_MS, planHousekeeping } from '../../operator/controller/housekeeping.ts';
import { runsOf } from '../../operator/controller/runs.ts';
import { TASK_UID, makeJob, makePod } from './operator-controller-fixtures.ts';

const COUNTED = Date.parse('2026-11-28T10:00:10Z');
const plan = (jobs: ReturnType<typeof makeJob>[], limits = { successfulRuns: 1, failedRuns: 1 }, awaitingRetry?: string) => {
  const chores = planHousekeeping(runsOf(jobs, () => [], undefined), TASK_UID, limits, COUNTED, awaitingRetry);
  return { release: chores.release.map((r) => r.id), remove: chores.remove.map((r) => r.id) };
};

describe('planHousekeeping', () => {
  it('lifts the finalizer of a deleted Job once its run is counted, not before', () => {
    expect(plan([makeJob('counted', { complete: '2026-11-28T10:00:10Z', deleting: true }), makeJob('not-yet', { complete: '2026-11-28T10:00:11Z', deleting: true })])).toEqual({
      release: ['counted'],
      remove: [],
    });
  });

  it('lifts it from a Job deleted before it finished (Cancelled) once that is counted and its pods have stopped, having them stopped first', () => {
    const DELETED = Date.parse('2026-11-28T12:00:00Z'); // the fixtures' deletionTimestamp of a Job
    const limits = { successfulRuns: 1, failedRuns: 1 };
    expect(plan([makeJob('stopped', { deleting: true })]).release).toEqual([]); // its cancellation not counted yet
    expect(planHousekeeping(runsOf([makeJob('stopped', { deleting: true })], () => [], undefined), TASK_UID, limits, DELETED).release.map((r) => r.id)).toEqual(['stopped']);
    const going = makeJob('going', { deleting: true });
    const live = planHousekeeping(runsOf([going], (j) => [makePod(j)], undefined), TASK_UID, limits, DELETED);
    expect(live.release).toEqual([]);
    expect(live.stopPods.map((r) => r.id)).toEqual(['going']);
    // Deleted in the foreground already: the garbage collector is stopping the pods.
    const foreground = { ...going, metadata: { ...going.metadata, finalizers: [...going.metadata!.finalizers!, FOREGROUND_DELETION] } };
    expect(planHousekeeping(runsOf([foreground], (j) => [makePod(j)], undefined), TASK_UID, limits, DELETED).stopPods).toEqual([]);
    const ended = planHousekeeping(runsOf([going], (j) => [makePod(j, { terminated: { exitCode: 143 } })], undefined), TASK_UID, limits, DELETED);
    expect(ended.release.map((r) => r.id)).toEqual(['going']);
  });

  it("keeps a cancelled run's Job while the stored lastRun still tells it otherwise (the runner's Interrupted would be retried once the Job is gone)", () => {
    const DELETED = Date.parse('2026-11-28T12:00:00Z');
    const limits = { successfulRuns: 1, failedRuns: 1 };
    const job = makeJob('going', { deleting: true });
    const runs = runsOf([job], (j) => [makePod(j, { terminated: { exitCode: 143 } })], undefined);
    const told = (outcome: 'Interrupted' | 'Cancelled') => ({ runId: 'going', trigger: 'Retry' as const, attempt: 2, startTime: '2026-11-28T11:59:00Z', outcome });
    expect(planHousekeeping(runs, TASK_UID, limits, DELETED, undefined, told('Interrupted')).release).toEqual([]);
    expect(planHousekeeping(runs, TASK_UID, limits, DELETED, undefined, told('Cancelled')).release.map((r) => r.id)).toEqual(['going']);
    expect(planHousekeeping(runs, TASK_UID, limits, DELETED, undefined, { ...told('Interrupted'), runId: 'another' }).release.map((r) => r.id)).toEqual(['going']);
  });

  it('lets a deleted Job go uncounted once RELEASE_UNCOUNTED_AFTER_MS have passed (a status that cannot be stored must not hold a slot for ever), not sooner, and not while its pods run', () => {
    const limits = { successfulRuns: 1, failedRuns: 1 };
    const job = makeJob('going', { deleting: true });
    const stopped = runsOf([job], (j) => [makePod(j, { terminated: { exitCode: 143 } })], undefined);
    const deleted = Date.parse('2026-11-28T12:00:00Z');
    const at = (now: number, runs = stopped) => planHousekeeping(runs, TASK_UID, limits, COUNTED, undefined, undefined, now).release.map((r) => r.id);
    expect(at(deleted + RELEASE_UNCOUNTED_AFTER_MS - 1)).toEqual([]);
    expect(at(deleted + RELEASE_UNCOUNTED_AFTER_MS)).toEqual(['going']);
    expect(at(deleted + RELEASE_UNCOUNTED_AFTER_MS, runsOf([job], (j) => [makePod(j)], undefined))).toEqual([]);
  });

  it('keeps the finalizer on finished Jobs nobody deletes', () => {
    expect(plan([makeJob('kept', { complete: '2026-11-28T09:00:10Z' })]).release).toEqual([]);
  });

  it('deletes the operator\'s own finished Jobs beyond spec.history, newest kept, the CronJob\'s left to the CronJob', () => {
    const own = (name: string, minute: number, ok: boolean) =>
      makeJob(name, { owner: 'BackgroundTask', createdAt: `2026-11-28T09:${minute}:00Z`, ...(ok ? { complete: `2026-11-28T09:${minute}:30Z` } : { failed: { at: `2026-11-28T09:${minute}:30Z` } }) });
    const jobs = [own('s1', 10, true), own('s2', 20, true), own('s3', 30, true), own('f1', 11, false), own('f2', 21, false), makeJob('scheduled', { complete: '2026-11-28T08:00:30Z' })];
    expect(plan(jobs, { successfulRuns: 2, failedRuns: 1 }).remove).toEqual(['s1', 'f1']);
    expect(plan(jobs, { successfulRuns: 0, failedRuns: 0 }).remove).toEqual(['s3', 's2', 's1', 'f2', 'f1']);
    // A failed run whose retry is still to start keeps its Job: the retry copies its arguments.
    expect(plan(jobs, { successfulRuns: 0, failedRuns: 0 }, 'f2').remove).toEqual(['s3', 's2', 's1', 'f1']);
  });
});
