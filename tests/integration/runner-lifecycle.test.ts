// The runner's life cycle as a process, with fixture tasks: SIGTERM and the soft timeout stop a
// task at its next safe point (exit 143), a task deaf to its signal is cut off after the grace,
// and an error thrown outside run() fails the run instead of crashing it unreported.
import { beforeAll, describe, expect, it } from 'vitest';
import { buildRunner, runRunner, startRunner } from '../support/runner-process.ts';

const PLUGINS = { TASK_PLUGINS: 'tests/fixtures/plugins/lifecycle.mjs' };

beforeAll(() => buildRunner());

describe('stopping a run', () => {
  it('SIGTERM: the task stops at its next check, exit 143, Interrupted, its counters kept', async () => {
    const runner = startRunner(['run', 'sync.fixture-waits-for-abort'], PLUGINS);
    await runner.waitForLine((l) => l.msg === 'waiting for the abort signal');
    await new Promise((r) => setTimeout(r, 200));
    runner.child.kill('SIGTERM');
    const exit = await runner.exit;
    expect(exit.code).toBe(143);
    expect(exit.result).toMatchObject({ outcome: 'Interrupted', message: 'received SIGTERM: stopped at a safe point' });
    expect(exit.result?.summary?.ticks).toBeGreaterThan(0);
    expect(exit.lines.some((l) => l.level === 'warn' && l.msg === 'received SIGTERM: stopping at the next safe point')).toBe(true);
  });

  it('SIGINT is treated like SIGTERM', async () => {
    const runner = startRunner(['run', 'sync.fixture-waits-for-abort'], PLUGINS);
    await runner.waitForLine((l) => l.msg === 'waiting for the abort signal');
    runner.child.kill('SIGINT');
    const exit = await runner.exit;
    expect(exit.code).toBe(143);
    expect(exit.result?.message).toBe('received SIGINT: stopped at a safe point');
  });

  it('the soft timeout: exit 143, TimedOut', async () => {
    const started = Date.now();
    const exit = await runRunner(['run', 'sync.fixture-waits-for-abort'], { ...PLUGINS, BGTASK_SOFT_TIMEOUT_SECONDS: '2' });
    expect(exit.code).toBe(143);
    expect(exit.result).toMatchObject({ outcome: 'TimedOut', message: 'soft timeout of 2s reached: stopped at a safe point' });
    // Not before its time (node starts in well under 2 s), and not long after.
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a task that ignores its signal is cut off after the grace, still reported', async () => {
    const runner = startRunner(['run', 'sync.fixture-ignores-abort'], { ...PLUGINS, BGTASK_ABORT_GRACE_SECONDS: '0.3' });
    await runner.waitForLine((l) => l.msg === 'sleeping, deaf to signals');
    const signalled = Date.now();
    runner.child.kill('SIGTERM');
    const exit = await runner.exit;
    expect(exit.code).toBe(143);
    expect(exit.result).toMatchObject({ outcome: 'Interrupted', message: 'received SIGTERM: the task did not stop within 0.3s of the abort' });
    expect(Date.now() - signalled).toBeLessThan(5000);
  });
});

describe('failing outside run()', () => {
  it('fails the run, exit 1, with the error as the cause', async () => {
    const exit = await runRunner(['run', 'sync.fixture-stray-error'], PLUGINS);
    expect(exit.code).toBe(1);
    expect(exit.result).toMatchObject({ outcome: 'Failed', message: 'the task failed outside its run() promise: thrown from a timer' });
  });
});
