import { describe, expect, it } from 'vitest';
import type { LastRun } from '../../crds/schema.ts';
import { DEFAULT_MAX_DELAY_SECONDS, decideRetry, retryDelaySeconds, retryPolicy, unitHash, type RetryPolicy } from '../../operator/controller/retries.ts';
import { retryJobName } from '../../operator/controller/names.ts';
import { newestRun, runsOf } from '../../operator/controller/runs.ts';
import { CLEANUP, DIGEST, makeJob, makePod, makeTask } from './operator-controller-fixtures.ts';

describe('retryPolicy', () => {
  it('takes the task defaults where the spec is silent', () => {
    expect(retryPolicy(makeTask(), DIGEST)).toEqual({ maxRetries: 3, delaySeconds: 60, backoff: 'Exponential', maxDelaySeconds: DEFAULT_MAX_DELAY_SECONDS });
    expect(retryPolicy(makeTask({ spec: { retry: { maxRetries: 0, backoff: 'Fixed' } } }), DIGEST)).toEqual({ maxRetries: 0, delaySeconds: 60, backoff: 'Fixed', maxDelaySeconds: 3600 });
    expect(retryPolicy(makeTask({ spec: { task: CLEANUP.name } }), CLEANUP)).toMatchObject({ maxRetries: 2, delaySeconds: 600, backoff: 'Fixed' });
  });
});

describe('retryDelaySeconds', () => {
  const fixed: RetryPolicy = { maxRetries: 5, delaySeconds: 30, backoff: 'Fixed', maxDelaySeconds: 3600 };
  const exponential: RetryPolicy = { maxRetries: 10, delaySeconds: 10, backoff: 'Exponential', maxDelaySeconds: 300 };

  it.each([2, 3, 7])('Fixed waits delaySeconds before attempt %i', (attempt) => {
    expect(retryDelaySeconds(fixed, attempt, 'run-1')).toBe(30);
  });

  it.each([
    { attempt: 2, base: 10 },
    { attempt: 3, base: 20 },
    { attempt: 4, base: 40 },
    { attempt: 6, base: 160 },
    { attempt: 7, base: 300 },
    { attempt: 11, base: 300 },
  ])('Exponential before attempt $attempt: within [$base/2, $base], never over the cap', ({ attempt, base }) => {
    for (const seed of ['a', 'b', 'run-29412345', 'digest-retry2-0a1b2c3d', 'zzz']) {
      const delay = retryDelaySeconds(exponential, attempt, seed);
      expect(delay).toBeGreaterThanOrEqual(Math.floor(base / 2));
      expect(delay).toBeLessThanOrEqual(base);
    }
  });

  it('jitters: different runs get different delays, the same run always the same', () => {
    const delays = new Set(['r1', 'r2', 'r3', 'r4', 'r5', 'r6'].map((seed) => retryDelaySeconds(exponential, 6, seed)));
    expect(delays.size).toBeGreaterThan(3);
    expect(retryDelaySeconds(exponential, 6, 'r1')).toBe(retryDelaySeconds(exponential, 6, 'r1'));
  });

  it('unitHash stays in [0, 1)', () => {
    for (const seed of ['', 'a', 'x'.repeat(500), '\u{1F600}']) {
      expect(unitHash(seed)).toBeGreaterThanOrEqual(0);
      expect(unitHash(seed)).toBeLessThan(1);
    }
  });
});

describe('decideRetry', () => {
  const task = makeTask({ spec: { retry: { maxRetries: 2, delaySeconds: 60, backoff: 'Fixed' } } });
  const policy = retryPolicy(task, DIGEST);
  const finished = '2026-11-28T08:00:30Z';
  const failedJob = (name: string, opts: Parameters<typeof makeJob>[1] = {}) =>
    makeJob(name, { task, createdAt: '2026-11-28T08:00:00Z', failed: { at: finished }, ...opts });

  function decide(jobs: ReturnType<typeof makeJob>[], opts: { now?: string; lastRun?: LastRun; exit?: number; taskOverride?: typeof task } = {}) {
    const runs = runsOf(jobs, (job) => [makePod(job, { terminated: { exitCode: opts.exit ?? 1 } })], opts.lastRun);
    return decideRetry({ task: opts.taskOverride ?? task, policy, newest: newestRun(runs, opts.lastRun), runs, now: Date.parse(opts.now ?? '2026-11-28T08:05:00Z') });
  }

  it('waits for the delay after the failure', () => {
    expect(decide([failedJob('run-1')], { now: '2026-11-28T08:01:00Z' })).toEqual({ kind: 'wait', failedRunId: 'run-1', attempt: 2, dueAt: Date.parse(finished) + 60_000 });
  });

  it('then starts attempt 2, named from the failed run, with the failed run\'s args', () => {
    const decision = decide([failedJob('run-1', { args: ['run', 'email.digest', '--params', '{"subject":"x"}'] })]);
    expect(decision).toEqual({
      kind: 'start',
      failedRunId: 'run-1',
      attempt: 2,
      name: retryJobName({ name: 'digest', uid: task.metadata.uid! }, 'run-1', 2),
      args: ['run', 'email.digest', '--params', '{"subject":"x"}'],
    });
  });

  it.each([
    { name: 'Failed', exit: 1, retried: true },
    { name: 'Interrupted (exit 143)', exit: 143, retried: true },
    { name: 'InvalidInput (exit 2) is never retried', exit: 2, retried: false },
  ])('$name', ({ exit, retried }) => {
    expect(decide([failedJob('run-1')], { exit }).kind).toBe(retried ? 'start' : 'none');
  });

  it('retries OOMKilled and TimedOut runs', () => {
    const oom = makeJob('run-1', { task, createdAt: '2026-11-28T08:00:00Z', failed: { at: finished } });
    const runs = runsOf([oom], (job) => [makePod(job, { terminated: { exitCode: 137, reason: 'OOMKilled' } })], undefined);
    expect(decideRetry({ task, policy, newest: newestRun(runs, undefined), runs, now: Date.parse('2026-11-28T08:05:00Z') }).kind).toBe('start');
    expect(decide([failedJob('run-1', { failed: { at: finished, reason: 'DeadlineExceeded' } })], { exit: 143 }).kind).toBe('start');
  });

  it('stops after maxRetries', () => {
    expect(decide([failedJob('run-1', { attempt: 3, trigger: 'Retry' })])).toEqual({ kind: 'none', reason: 'retries exhausted (2)' });
  });

  it('never starts a retry twice: once it exists it is the newest run', () => {
    const retryName = retryJobName({ name: 'digest', uid: task.metadata.uid! }, 'run-1', 2);
    const queuedRetry = makeJob(retryName, { task, createdAt: '2026-11-28T08:01:30Z', suspended: true, trigger: 'Retry', attempt: 2, owner: 'BackgroundTask' });
    expect(decide([failedJob('run-1'), queuedRetry]).kind).toBe('none');
  });

  it('does not retry a run a newer one superseded', () => {
    expect(decide([failedJob('run-1'), makeJob('run-2', { task, createdAt: '2026-11-28T08:03:00Z', suspended: true })]).kind).toBe('none');
  });

  it('retries from the recorded lastRun when the failed Job is already deleted', () => {
    const lastRun: LastRun = { runId: 'run-9', trigger: 'Schedule', attempt: 1, startTime: '2026-11-28T08:00:01Z', completionTime: finished, outcome: 'Failed', message: 'boom' };
    expect(decide([], { lastRun })).toMatchObject({ kind: 'start', failedRunId: 'run-9', attempt: 2 });
  });

  it('does not retry while the task is suspended', () => {
    expect(decide([failedJob('run-1')], { taskOverride: makeTask({ spec: { suspend: true } }) }).kind).toBe('none');
  });
});
