import { describe, expect, it } from 'vitest';
import type { LastRun } from '../../crds/schema.ts';
import { jobResult, lastRunOf, newestRun, runOf, runsOf, terminationReport } from '../../operator/controller/runs.ts';
import { makeJob, makePod, makeTask, runnerReport } from './operator-controller-fixtures.ts';

const AT = '2026-11-28T08:01:00Z';
const deadline = { at: AT, reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' };

describe("runOf: a runner's report", () => {
  it("takes the run's trigger and attempt from its Job, whatever the report says (a report cannot restart its retries)", () => {
    const job = makeJob('run-1', { complete: AT, trigger: 'Retry', attempt: 3 });
    const pod = makePod(job, { terminated: { exitCode: 1, message: runnerReport('run-1', 'Failed', { trigger: 'Manual', attempt: 1 }) } });
    const fromTermination = runOf(job, [pod], undefined);
    expect(fromTermination.report).toMatchObject({ runId: 'run-1', trigger: 'Retry', attempt: 3, outcome: 'Failed' });
    expect(lastRunOf(fromTermination)).toMatchObject({ trigger: 'Retry', attempt: 3 });
    const recorded = JSON.parse(runnerReport('run-1', 'Failed', { trigger: 'Schedule', attempt: 1 })) as LastRun;
    expect(lastRunOf(runOf(job, [], recorded))).toMatchObject({ runId: 'run-1', trigger: 'Retry', attempt: 3, outcome: 'Failed' });
  });
});

describe('jobResult: how a finished run ended', () => {
  const cases: {
    name: string;
    job: Parameters<typeof makeJob>[1];
    pod?: Parameters<typeof makePod>[1];
    lastRun?: LastRun;
    outcome: string;
    message: RegExp;
  }[] = [
    { name: 'Job complete', job: { complete: AT }, outcome: 'Succeeded', message: /^succeeded$/ },
    {
      name: 'Job complete, the runner\'s termination message',
      job: { complete: AT },
      pod: { terminated: { exitCode: 0, message: runnerReport('run-1', 'Succeeded') } },
      outcome: 'Succeeded',
      message: /^sent 3 digests$/,
    },
    {
      name: 'the runner reported a failure (exit 1)',
      job: { failed: { at: AT } },
      pod: { terminated: { exitCode: 1, message: runnerReport('run-1', 'Failed', { message: 'SMTP 421: try later' }) } },
      outcome: 'Failed',
      message: /SMTP 421/,
    },
    { name: 'OOMKilled, no report', job: { failed: { at: AT } }, pod: { terminated: { exitCode: 137, reason: 'OOMKilled' } }, outcome: 'OOMKilled', message: /memory limit/ },
    {
      name: 'the deadline killed it and the runner, seeing SIGTERM, said Interrupted',
      job: { failed: deadline },
      pod: { terminated: { exitCode: 143, message: runnerReport('run-1', 'Interrupted') } },
      outcome: 'TimedOut',
      message: /Interrupted/,
    },
    { name: 'the deadline, the pod already gone', job: { failed: deadline }, outcome: 'TimedOut', message: /exceeded its timeout: DeadlineExceeded/ },
    { name: 'stopped (exit 143), no report', job: { failed: { at: AT } }, pod: { terminated: { exitCode: 143 } }, outcome: 'Interrupted', message: /exit 143/ },
    {
      name: 'invalid input (exit 2), the log tail as message',
      job: { failed: { at: AT } },
      pod: { terminated: { exitCode: 2, message: '{"level":50,"msg":"run rejected: invalid params"}\n' } },
      outcome: 'InvalidInput',
      message: /exit 2.*invalid params/,
    },
    {
      name: 'evicted',
      job: { failed: { at: AT } },
      pod: { podReason: 'Evicted', podMessage: 'The node was low on resource: memory.' },
      outcome: 'Failed',
      message: /Evicted: The node was low on resource: memory/,
    },
    {
      name: 'the image could not be pulled, until the deadline',
      job: { failed: deadline },
      pod: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "bgtask.local/nope:dev"' }, image: 'bgtask.local/nope:dev' },
      outcome: 'Failed',
      message: /image bgtask.local\/nope:dev could not be pulled \(ImagePullBackOff\)/,
    },
    { name: 'killed by a signal (exit 137, not OOM)', job: { failed: { at: AT } }, pod: { terminated: { exitCode: 137, reason: 'Error' } }, outcome: 'Failed', message: /exited with code 137 \(Error\)/ },
    { name: 'failed with no pod left', job: { failed: { at: AT } }, outcome: 'Failed', message: /the Job failed: BackoffLimitExceeded/ },
    {
      name: 'the runner\'s report in status.lastRun wins over the pod',
      job: { failed: { at: AT } },
      pod: { terminated: { exitCode: 1 } },
      lastRun: { runId: 'run-1', trigger: 'Schedule', attempt: 1, startTime: '2026-11-28T08:00:02Z', outcome: 'Failed', message: 'from the status' },
      outcome: 'Failed',
      message: /^from the status$/,
    },
    {
      name: 'a termination message of another run is not this run\'s report',
      job: { failed: { at: AT } },
      pod: { terminated: { exitCode: 143, message: runnerReport('other-run', 'Succeeded') } },
      outcome: 'Interrupted',
      message: /exit 143/,
    },
  ];

  it.each(cases)('$name → $outcome', ({ job, pod, lastRun, outcome, message }) => {
    const j = makeJob('run-1', job);
    const pods = pod ? [makePod(j, pod)] : [];
    const report = lastRun ?? terminationReport(pods, 'run-1');
    const result = jobResult(j, pods, report);
    expect(result?.outcome).toBe(outcome);
    expect(result?.message).toMatch(message);
    expect(result?.finishedAt).toBe(AT);
  });

  it('is undefined while the run goes on', () => {
    const j = makeJob('run-1');
    expect(jobResult(j, [makePod(j)], undefined)).toBeUndefined();
  });

  it('is Cancelled, at the deletion, for a Job deleted before it finished: waiting, running, or stopped by it (the runner said Interrupted)', () => {
    const deleted = { outcome: 'Cancelled', finishedAt: '2026-11-28T12:00:00Z', message: 'its Job was deleted before the run finished' };
    const queued = makeJob('run-1', { suspended: true, deleting: true });
    expect(jobResult(queued, [], undefined)).toEqual(deleted);
    const running = makeJob('run-1', { deleting: true });
    expect(jobResult(running, [makePod(running)], undefined)).toEqual(deleted);
    const stopped = [makePod(running, { terminated: { exitCode: 143, message: runnerReport('run-1', 'Interrupted') } })];
    expect(jobResult(running, stopped, terminationReport(stopped, 'run-1'))).toEqual(deleted);
    // Finished before the deletion reached it: the runner's report stands.
    const done = [makePod(running, { terminated: { exitCode: 1, message: runnerReport('run-1', 'Failed') } })];
    expect(jobResult(running, done, terminationReport(done, 'run-1'))).toMatchObject({ outcome: 'Failed', finishedAt: '2026-11-28T08:00:05.480Z' });
    // A Job that had finished keeps its outcome when its history limit deletes it.
    const finished = makeJob('run-1', { complete: '2026-11-28T09:00:00Z', deleting: true });
    expect(jobResult(finished, [], undefined)?.outcome).toBe('Succeeded');
    // Marked Failed by the Job controller after the deletion (its pod stopped by it): still the deletion's.
    expect(jobResult(makeJob('run-1', { deleting: true, failed: { at: '2026-11-28T12:00:07Z' } }), [], undefined)).toEqual(deleted);
    expect(jobResult(makeJob('run-1', { deleting: true, failed: { at: '2026-11-28T12:00:00Z' } }), [], undefined)?.outcome).toBe('Failed');
    // A report that ended after the deletion, or the Cancelled verdict read back from the status, moves nothing.
    const late = JSON.parse(runnerReport('run-1', 'Failed', { completionTime: '2026-11-28T12:00:09Z' })) as LastRun;
    expect(jobResult(running, [], late)).toEqual(deleted);
    const readBack = { ...late, outcome: 'Cancelled' as const, completionTime: '2026-11-28T12:00:00Z' };
    expect(jobResult(running, [], readBack)).toEqual(deleted);
  });

  it('keeps a cancelled run at its deletion time in lastRun, however late its runner reported, so it is counted once', () => {
    const job = makeJob('run-1', { deleting: true });
    const interrupted = JSON.parse(runnerReport('run-1', 'Interrupted', { startTime: '2026-11-28T11:59:00Z', completionTime: '2026-11-28T12:00:08Z' })) as LastRun;
    const written = lastRunOf(runOf(job, [], interrupted));
    expect(written).toMatchObject({ outcome: 'Cancelled', completionTime: '2026-11-28T12:00:00Z', durationSeconds: 60, message: 'its Job was deleted before the run finished' });
    // Read back from the status on the next reconcile: the same.
    expect(lastRunOf(runOf(job, [], written))).toEqual(written);
  });
});

describe('runOf', () => {
  it('reads trigger, attempt and whether the run waits for a slot', () => {
    const queued = runOf(makeJob('r', { suspended: true, trigger: 'Retry', attempt: 3, annotations: { 'workers.personal-assistant.io/retry-of': 'x' } }), [], undefined);
    expect(queued).toMatchObject({ id: 'r', trigger: 'Retry', attempt: 3, queued: true, admitted: false, retryOf: 'x', hasFinalizer: false });
    const running = runOf(makeJob('r'), [], undefined);
    expect(running).toMatchObject({ queued: false, admitted: true, hasFinalizer: true, startedAt: '2026-11-28T08:00:00Z' });
    expect(runOf(makeJob('r', { suspended: true, deleting: true }), [], undefined).queued).toBe(false);
  });

  it('sorts runs oldest first', () => {
    const runs = runsOf([makeJob('b', { createdAt: '2026-11-28T09:00:00Z' }), makeJob('a', { createdAt: '2026-11-28T08:00:00Z' })], () => [], undefined);
    expect(runs.map((r) => r.id)).toEqual(['a', 'b']);
  });
});

describe('status.lastRun', () => {
  const task = makeTask();
  const recorded = (runId: string, startTime: string, outcome?: 'Succeeded' | 'Failed'): LastRun => ({
    runId,
    trigger: 'Schedule',
    attempt: 1,
    startTime,
    ...(outcome ? { outcome, completionTime: startTime, message: `recorded ${outcome}` } : {}),
  });

  it('keeps the runner\'s report of the newest run', () => {
    const report = recorded('new', '2026-11-28T09:00:01Z', 'Succeeded');
    const runs = runsOf([makeJob('old', { task, complete: '2026-11-28T08:00:10Z' }), makeJob('new', { task, createdAt: '2026-11-28T09:00:00Z', complete: '2026-11-28T09:00:10Z' })], () => [], report);
    expect(newestRun(runs, report).lastRun).toBe(report);
  });

  it('describes the newest run from its Job when the runner could not report (OOMKilled)', () => {
    const job = makeJob('new', { task, createdAt: '2026-11-28T09:00:00Z', failed: { at: '2026-11-28T09:00:30Z' } });
    const runs = runsOf([job], () => [makePod(job, { terminated: { exitCode: 137, reason: 'OOMKilled' } })], recorded('old', '2026-11-28T08:00:00Z', 'Succeeded'));
    expect(newestRun(runs, recorded('old', '2026-11-28T08:00:00Z', 'Succeeded')).lastRun).toEqual({
      runId: 'new',
      trigger: 'Schedule',
      attempt: 1,
      startTime: '2026-11-28T09:00:00Z',
      completionTime: '2026-11-28T09:00:30Z',
      durationSeconds: 30,
      outcome: 'OOMKilled',
      message: 'the runner was killed for exceeding its memory limit (OOMKilled)',
    });
  });

  it('keeps the recorded run when its Job is gone and no newer run exists', () => {
    const report = recorded('gone', '2026-11-28T10:00:01Z', 'Failed');
    const runs = runsOf([makeJob('older', { task, complete: '2026-11-28T08:00:10Z' })], () => [], report);
    expect(newestRun(runs, report)).toEqual({ lastRun: report });
  });

  it('tells of a waiting retry whose Job was deleted as the newest run, Cancelled (so it is not made again)', () => {
    const failedRun = makeJob('run-1', { createdAt: '2026-11-28T09:00:00Z', failed: { at: '2026-11-28T09:00:10Z' } });
    const retry = makeJob('run-1-retry-2', { createdAt: '2026-11-28T09:05:10Z', suspended: true, deleting: true, trigger: 'Retry', attempt: 2 });
    const { lastRun } = newestRun(runsOf([failedRun, retry], () => [], undefined), undefined);
    expect(lastRun).toMatchObject({ runId: 'run-1-retry-2', trigger: 'Retry', attempt: 2, outcome: 'Cancelled', completionTime: '2026-11-28T12:00:00Z' });
  });

  it('does not let a cancelled run that never started outrank a run going when it was made, nor give it a duration', () => {
    const going = makeJob('run-a', { createdAt: '2026-11-28T10:00:00Z' });
    const waited = makeJob('run-s', { createdAt: '2026-11-28T11:00:00Z', suspended: true, deleting: true, trigger: 'Manual' });
    expect(newestRun(runsOf([going, waited], () => [], undefined), undefined).run?.id).toBe('run-a');
    // Run A ended after the waiting run was made: still A's.
    const endedLater = makeJob('run-a', { createdAt: '2026-11-28T10:00:00Z', failed: { at: '2026-11-28T11:30:00Z' } });
    expect(newestRun(runsOf([endedLater, waited], () => [], undefined), undefined).run?.id).toBe('run-a');
    const endedBefore = makeJob('run-a', { createdAt: '2026-11-28T10:00:00Z', failed: { at: '2026-11-28T10:30:00Z' } });
    const { lastRun } = newestRun(runsOf([endedBefore, waited], () => [], undefined), undefined);
    expect(lastRun).toMatchObject({ runId: 'run-s', outcome: 'Cancelled' });
    expect(lastRun).not.toHaveProperty('durationSeconds');
  });

  it('ignores queued Jobs: a run starts when it is admitted', () => {
    const runs = runsOf([makeJob('waiting', { task, suspended: true, createdAt: '2026-11-28T11:00:00Z' })], () => [], undefined);
    expect(newestRun(runs, undefined)).toEqual({});
  });

  // The operator creates run-now and retry Jobs with the run-accounting finalizer already on.
  it('ignores a queued run-now Job, finalizer and all: the last run stays the one that ran', () => {
    const ran = makeJob('scheduled', { task, createdAt: '2026-11-28T10:00:00Z', failed: { at: '2026-11-28T10:01:00Z' } });
    const waiting = makeJob('manual', { task, suspended: true, finalizer: true, createdAt: '2026-11-28T11:00:00Z', trigger: 'Manual' });
    const runs = runsOf([ran, waiting], () => [], undefined);
    expect(runs.find((r) => r.id === 'manual')).toMatchObject({ queued: true, admitted: false, hasFinalizer: true });
    expect(newestRun(runs, undefined).run?.id).toBe('scheduled');
  });

  it('says TimedOut where the runner said Interrupted and the deadline killed it', () => {
    const job = makeJob('run-1', { failed: deadline });
    const run = runOf(job, [makePod(job, { terminated: { exitCode: 143, message: runnerReport('run-1', 'Interrupted') } })], undefined);
    expect(lastRunOf(run).outcome).toBe('TimedOut');
  });
});
