// Waiting for the caches to show the reconciler's own writes: how long, and when the wait ends.
import { describe, expect, it } from 'vitest';
import { ABSENT, WriteExpectations } from '../../operator/controller/expectations.ts';

describe('WriteExpectations', () => {
  it('waits while the cache still holds the object the write was made from, until the deadline', () => {
    const e = new WriteExpectations(10_000);
    e.expect('task', 'ns/a', '100', 1_000);
    expect(e.waitMs('task', 'ns/a', '100', 1_000)).toBe(10_000);
    expect(e.waitMs('task', 'ns/a', '100', 4_000)).toBe(7_000);
    expect(e.waitMs('task', 'ns/a', '100', 11_000)).toBe(0); // deadline passed: forgotten
    expect(e.size).toBe(0);
  });

  it('ends the wait when the cache moved on, or an event of the object arrived', () => {
    const e = new WriteExpectations();
    e.expect('task', 'ns/a', '100', 0);
    expect(e.waitMs('task', 'ns/a', '101', 0)).toBe(0);
    expect(e.size).toBe(0);
    e.expect('cronJob', 'ns/a', ABSENT, 0);
    expect(e.waitMs('cronJob', 'ns/a', ABSENT, 0)).toBeGreaterThan(0);
    e.observed('cronJob', 'ns/a');
    expect(e.waitMs('cronJob', 'ns/a', ABSENT, 0)).toBe(0);
  });

  it('keeps kinds and tasks apart, and forgets a task whole', () => {
    const e = new WriteExpectations();
    e.expect('task', 'ns/a', '1', 0);
    e.expect('cronJob', 'ns/a', ABSENT, 0);
    e.expect('task', 'ns/b', '1', 0);
    e.observed('task', 'ns/a');
    expect(e.waitMs('cronJob', 'ns/a', ABSENT, 0)).toBeGreaterThan(0);
    expect(e.waitMs('task', 'ns/b', '1', 0)).toBeGreaterThan(0);
    e.forget('ns/a');
    expect(e.waitMs('cronJob', 'ns/a', ABSENT, 0)).toBe(0);
    expect(e.size).toBe(1);
  });
});
