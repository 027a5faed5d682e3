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

describe('WriteExpectations: the echo of a write', () => {
  it('tells the write own event apart from any other, once', () => {
    const e = new WriteExpectations();
    e.expect('task', 'ns/a', '100', 0, '101');
    expect(e.observed('task', 'ns/a', '101')).toBe(true);
    expect(e.observed('task', 'ns/a', '101')).toBe(false); // consumed: a later event with it (a relist) is routed
    e.expect('task', 'ns/a', '101', 0, '102');
    expect(e.observed('task', 'ns/a', '103')).toBe(false); // someone else's write came first
    expect(e.size).toBe(0);
  });

  it('lets the echo through when a reconcile was put off waiting for it', () => {
    // An event of a Job arrives between the status write and its echo: that reconcile waits for
    // the echo, so the echo must bring the task back rather than leave it to the deadline.
    const e = new WriteExpectations(10_000);
    e.expect('task', 'ns/a', '100', 0, '101');
    expect(e.waitMs('task', 'ns/a', '100', 5)).toBe(9_995);
    expect(e.observed('task', 'ns/a', '101')).toBe(false);
    expect(e.size).toBe(0);
    // Without a reconcile waiting, the same echo is still suppressed.
    e.expect('cronJob', 'ns/a', ABSENT, 0, '7');
    expect(e.observed('cronJob', 'ns/a', '7')).toBe(true);
  });

  it('holds events that arrive while the write is in flight, and settles them by its response', () => {
    const e = new WriteExpectations();
    // The echo arrives before the response: held, then recognised; the cache has the write already.
    e.begin('cronJob', 'ns/a');
    expect(e.waitMs('cronJob', 'ns/a', ABSENT, 0)).toBe(0);
    expect(e.observed('cronJob', 'ns/a', '7')).toBe(true);
    expect(e.expect('cronJob', 'ns/a', ABSENT, 0, '7')).toBe(false);
    expect(e.size).toBe(0);
    // Another event came in with the echo: the task goes round again.
    e.begin('cronJob', 'ns/a');
    e.observed('cronJob', 'ns/a', '8');
    e.observed('cronJob', 'ns/a', '9');
    expect(e.expect('cronJob', 'ns/a', '7', 0, '8')).toBe(true);
    // A deletion held is never an echo.
    e.begin('task', 'ns/a');
    e.observed('task', 'ns/a');
    expect(e.expect('task', 'ns/a', '1', 0, '2')).toBe(true);
    // Nothing arrived: the write is awaited as usual.
    e.begin('task', 'ns/b');
    expect(e.expect('task', 'ns/b', '1', 0, '2')).toBe(false);
    expect(e.waitMs('task', 'ns/b', '1', 0)).toBeGreaterThan(0);
  });

  it('abandons a write not made, saying whether events were held meanwhile', () => {
    const e = new WriteExpectations();
    e.begin('task', 'ns/a');
    expect(e.abandon('task', 'ns/a')).toBe(false);
    e.begin('task', 'ns/a');
    e.observed('task', 'ns/a', '5');
    expect(e.abandon('task', 'ns/a')).toBe(true);
    expect(e.size).toBe(0);
    expect(e.observed('task', 'ns/a', '6')).toBe(false);
  });
});
