import { describe, expect, it } from 'vitest';
import type { BackgroundTaskStatus } from '../../crds/schema.ts';
import type { CronJob, Job } from '../../operator/controller/deps.ts';
import { runsOf } from '../../operator/controller/runs.ts';
import { FOLD_SETTLE_MS, buildStatus, countedThrough, runsToFold, type StatusInput } from '../../operator/controller/status.ts';
import { makeJob, makePod, makeTask, runnerReport } from './operator-controller-fixtures.ts';

const NOW = new Date('2026-11-28T12:00:00Z');

function status(jobs: Job[], previous?: BackgroundTaskStatus, extra: Partial<StatusInput> = {}, now = NOW) {
  const task = makeTask({ ...(previous ? { status: previous } : {}) });
  const runs = runsOf(jobs, () => [], previous?.lastRun);
  return buildStatus({ task, family: 'email', cronJobName: 'digest', runs, now, ...extra });
}

const succeeded = (name: string, hour: string) => makeJob(name, { createdAt: `2026-11-28T${hour}:00:00Z`, complete: `2026-11-28T${hour}:00:10Z` });
const failed = (name: string, hour: string) => makeJob(name, { createdAt: `2026-11-28T${hour}:00:00Z`, failed: { at: `2026-11-28T${hour}:00:10Z` } });

describe('counters: folded once, kept when Jobs are gone', () => {
  const jobs = [succeeded('r08', '08'), failed('r09', '09'), succeeded('r10', '10'), failed('r11', '11')];

  it('counts every finished run, in the order they finished', () => {
    const first = status(jobs);
    expect(first.status).toMatchObject({
      succeeded: 2,
      failed: 2,
      consecutiveFailures: 1,
      lastSuccessfulTime: '2026-11-28T10:00:10Z',
      lastFailureTime: '2026-11-28T11:00:10Z',
    });
    expect(first.folded.map((r) => r.id)).toEqual(['r08', 'r09', 'r10', 'r11']);
  });

  it('counts nothing twice: the same world again gives the identical status', () => {
    const first = status(jobs);
    const second = status(jobs, first.status, {}, new Date(NOW.getTime() + 60_000));
    expect(second.folded).toEqual([]);
    expect(second.status).toEqual(first.status);
  });

  it('keeps the counts when the history limits delete the old Jobs', () => {
    const first = status(jobs);
    const afterGc = status([failed('r11', '11')], first.status);
    expect(afterGc.status).toMatchObject({ succeeded: 2, failed: 2, consecutiveFailures: 1 });
  });

  it('adds a new run to the counts, even with every older Job gone', () => {
    const first = status(jobs);
    const later = status([failed('r12', '12')], first.status, {}, new Date('2026-11-28T13:00:00Z'));
    expect(later.status).toMatchObject({ succeeded: 2, failed: 3, consecutiveFailures: 2, lastFailureTime: '2026-11-28T12:00:10Z' });
    expect(later.folded.map((r) => r.id)).toEqual(['r12']);
  });

  it('resets consecutive failures on a success', () => {
    const previous = { succeeded: 5, failed: 7, consecutiveFailures: 3, lastFailureTime: '2026-11-28T07:00:10Z' };
    expect(status([failed('r08', '08'), succeeded('r09', '09')], previous).status).toMatchObject({ succeeded: 6, failed: 8, consecutiveFailures: 0 });
    expect(status([failed('r08', '08'), failed('r09', '09')], previous).status).toMatchObject({ consecutiveFailures: 5 });
  });

  it('counts a cancelled run (its Job deleted before it finished) apart: no failure, the failures in a row unchanged, its time a watermark', () => {
    const previous = { succeeded: 1, failed: 2, consecutiveFailures: 2, lastFailureTime: '2026-11-28T09:00:10Z' };
    const cancelled = makeJob('r10', { createdAt: '2026-11-28T10:00:00Z', deleting: true });
    const later = status([cancelled], previous, {}, new Date('2026-11-28T12:00:10Z'));
    expect(later.status).toMatchObject({ succeeded: 1, failed: 2, consecutiveFailures: 2, cancelled: 1, lastCancellationTime: '2026-11-28T12:00:00Z' });
    expect(later.status.conditions?.find((c) => c.type === 'LastRunSucceeded')).toMatchObject({ status: 'False', reason: 'Cancelled' });
    expect(countedThrough(later.status)).toBe(Date.parse('2026-11-28T12:00:00Z'));
    expect(status([cancelled], later.status, {}, new Date('2026-11-28T12:01:00Z')).folded).toEqual([]);
    // Its runner's late report, and the status read back, leave it counted once.
    const report = { ...later.status.lastRun!, outcome: 'Interrupted' as const, completionTime: '2026-11-28T12:00:30Z' };
    const reported = status([cancelled], { ...later.status, lastRun: report }, {}, new Date('2026-11-28T12:01:00Z'));
    expect(reported.folded).toEqual([]);
    expect(reported.status).toMatchObject({ cancelled: 1, lastRun: { outcome: 'Cancelled', completionTime: '2026-11-28T12:00:00Z' } });
    // No cancelled run yet: the member is not there at all.
    expect(status(jobs).status).not.toHaveProperty('cancelled');
  });

  it('waits until a run has been finished for the settle time, then counts it', () => {
    const finishing = makeJob('r12', { createdAt: '2026-11-28T11:59:00Z', complete: '2026-11-28T11:59:58Z' });
    const early = status([finishing], { succeeded: 1, lastSuccessfulTime: '2026-11-28T10:00:10Z' });
    expect(early.status.succeeded).toBe(1);
    expect(early.foldAt).toBe(Date.parse('2026-11-28T11:59:58Z') + FOLD_SETTLE_MS);
    const settled = status([finishing], early.status, {}, new Date(early.foldAt!));
    expect(settled.status.succeeded).toBe(2);
    expect(settled.foldAt).toBeUndefined();
  });

  it('counts two runs that finished in the same second together, whichever the cache showed first', () => {
    const a = makeJob('a', { createdAt: '2026-11-28T11:00:00Z', complete: '2026-11-28T11:59:57Z' });
    const b = makeJob('b', { createdAt: '2026-11-28T11:00:01Z', failed: { at: '2026-11-28T11:59:57Z' } });
    const onlyA = status([a], undefined, {}, new Date('2026-11-28T11:59:59Z'));
    expect(onlyA.folded).toEqual([]);
    const both = status([a, b], onlyA.status, {}, new Date('2026-11-28T12:00:03Z'));
    expect(both.folded.map((r) => r.id)).toEqual(['a', 'b']);
    expect(both.status).toMatchObject({ succeeded: 1, failed: 1 });
  });

  it('leaves running and queued runs out of the counts', () => {
    const s = status([makeJob('running'), makeJob('waiting', { suspended: true })]).status;
    expect(s).toMatchObject({ succeeded: 0, failed: 0, consecutiveFailures: 0 });
  });
});

describe('runsToFold and countedThrough', () => {
  it('the watermark is the later of the two last times', () => {
    expect(countedThrough(undefined)).toBe(Number.NEGATIVE_INFINITY);
    expect(countedThrough({ lastSuccessfulTime: '2026-11-28T10:00:00Z', lastFailureTime: '2026-11-28T09:00:00Z' })).toBe(Date.parse('2026-11-28T10:00:00Z'));
  });

  it('folds nothing at or before the watermark', () => {
    const runs = runsOf([succeeded('r08', '08'), failed('r09', '09')], () => [], undefined);
    expect(runsToFold(runs, Date.parse('2026-11-28T09:00:10Z'), NOW.getTime()).fold).toEqual([]);
    expect(runsToFold(runs, Date.parse('2026-11-28T08:00:10Z'), NOW.getTime()).fold.map((r) => r.id)).toEqual(['r09']);
  });
});

describe('active runs and conditions', () => {
  it('lists unfinished runs, oldest first, with the queued ones marked, and says why they wait', () => {
    const s = status([makeJob('waiting', { suspended: true, createdAt: '2026-11-28T11:00:00Z' }), makeJob('running', { createdAt: '2026-11-28T10:00:00Z' })], undefined, {
      queuedMessage: 'family email runs 4 at once',
    }).status;
    expect(s.active).toEqual([
      { name: 'running', runId: 'running', queued: false },
      { name: 'waiting', runId: 'waiting', queued: true },
    ]);
    expect(s.conditions?.find((c) => c.type === 'Queued')).toMatchObject({ status: 'True', reason: 'WaitingForFamilySlot', message: 'waiting waits for a slot: family email runs 4 at once' });
  });

  it('leaves Jobs being deleted out of the active runs', () => {
    expect(status([makeJob('going', { deleting: true })]).status.active).toEqual([]);
  });

  it('is Ready when reconciled, not Ready with the reason and message when the spec is invalid', () => {
    expect(status([]).status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Reconciled', observedGeneration: 1 });
    const invalid = status([], undefined, { notReady: { reason: 'InvalidSpec', message: 'spec.task: unknown task "email.nope"' } }).status;
    expect(invalid.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidSpec', message: 'spec.task: unknown task "email.nope"' });
  });

  it('says whether the last run succeeded', () => {
    const job = makeJob('r11', { createdAt: '2026-11-28T11:00:00Z', failed: { at: '2026-11-28T11:00:10Z' } });
    const task = makeTask();
    const runs = runsOf([job], () => [makePod(job, { terminated: { exitCode: 137, reason: 'OOMKilled' } })], undefined);
    const s = buildStatus({ task, family: 'email', cronJobName: 'digest', runs, now: NOW }).status;
    expect(s.conditions?.find((c) => c.type === 'LastRunSucceeded')).toMatchObject({ status: 'False', reason: 'OOMKilled' });
    expect(s.lastRun).toMatchObject({ runId: 'r11', outcome: 'OOMKilled' });
  });

  it('keeps LastRunSucceeded, and its lastTransitionTime, while the next run goes', () => {
    const done = succeeded('r10', '10');
    const before = status([done], undefined, {}, new Date('2026-11-28T10:30:00Z')).status;
    const kept = before.conditions?.find((c) => c.type === 'LastRunSucceeded');
    expect(kept).toMatchObject({ status: 'True', lastTransitionTime: '2026-11-28T10:30:00Z' });
    const during = status([done, makeJob('r11', { createdAt: '2026-11-28T11:00:00Z' })], before, {}, new Date('2026-11-28T11:00:30Z')).status;
    expect(during.lastRun?.runId).toBe('r11');
    expect(during.conditions?.find((c) => c.type === 'LastRunSucceeded')).toEqual(kept);
  });

  it('says a suspended task\'s scheduled runs wait for it to be resumed, its run-now runs for a slot', () => {
    const suspended = (jobs: Job[]) => {
      const task = makeTask({ spec: { suspend: true } });
      return buildStatus({ task, family: 'email', cronJobName: 'digest', runs: runsOf(jobs, () => [], undefined), now: NOW, queuedMessage: 'family email runs 1 at once' }).status.conditions?.find((c) => c.type === 'Queued');
    };
    const scheduled = makeJob('digest-1', { suspended: true, createdAt: '2026-11-28T11:00:00Z' });
    expect(suspended([scheduled])).toMatchObject({ status: 'True', reason: 'WaitingForResume', message: 'digest-1 waits for the task to be resumed (spec.suspend is true)' });
    const manual = makeJob('digest-now-1', { suspended: true, trigger: 'Manual', createdAt: '2026-11-28T11:30:00Z' });
    expect(suspended([scheduled, manual])).toMatchObject({
      reason: 'WaitingForFamilySlot',
      message: 'digest-now-1 waits for a slot: family email runs 1 at once; digest-1 waits for the task to be resumed (spec.suspend is true)',
    });
  });

  it('keeps a condition\'s lastTransitionTime while its status holds, and moves it when it changes', () => {
    const first = status([], undefined, {}, new Date('2026-11-28T10:00:00Z')).status;
    const same = status([], first, {}, new Date('2026-11-28T11:00:00Z')).status;
    expect(same.conditions).toEqual(first.conditions);
    const flipped = status([], first, { notReady: { reason: 'CronJobFailed', message: 'forbidden' } }, new Date('2026-11-28T11:00:00Z')).status;
    const ready = flipped.conditions?.find((c) => c.type === 'Ready');
    expect(ready).toMatchObject({ status: 'False', lastTransitionTime: '2026-11-28T11:00:00Z' });
    expect(flipped.conditions?.find((c) => c.type === 'Queued')?.lastTransitionTime).toBe('2026-11-28T10:00:00Z');
  });
});

describe('schedule times and the runner\'s report', () => {
  it('shows the CronJob\'s last schedule and the computed next one', () => {
    const s = status([], undefined, {
      cronJob: { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'digest' }, status: { lastScheduleTime: '2026-11-28T08:00:00Z' } } as CronJob,
      nextScheduleTime: Date.parse('2026-11-29T08:00:00Z'),
    }).status;
    expect(s).toMatchObject({ lastScheduleTime: '2026-11-28T08:00:00Z', nextScheduleTime: '2026-11-29T08:00:00Z', family: 'email', cronJobName: 'digest' });
  });

  it('keeps the runner\'s report as lastRun, so the runner\'s write and ours agree', () => {
    const job = makeJob('r11', { createdAt: '2026-11-28T11:00:00Z', complete: '2026-11-28T11:00:10Z' });
    const report = JSON.parse(runnerReport('r11', 'Succeeded'));
    const task = makeTask({ status: { lastRun: report } });
    const runs = runsOf([job], () => [], report);
    expect(buildStatus({ task, family: 'email', cronJobName: 'digest', runs, now: NOW }).status.lastRun).toEqual(report);
  });
});
