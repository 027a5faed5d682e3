import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ItemExponentialRateLimiter } from '../../operator/kube/rate-limiter.ts';
import { WorkQueue } from '../../operator/kube/workqueue.ts';

/** A get() that must not be waiting: the queue had a key ready. */
async function getNow(q: WorkQueue): Promise<string | undefined> {
  let settled = false;
  const p = q.get().finally(() => (settled = true));
  await Promise.resolve();
  await Promise.resolve();
  expect(settled, 'get() should have returned a ready key at once').toBe(true);
  return p;
}

/** Whether get() is still waiting after the microtask queue drains. */
async function isBlocked(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void p.then(() => (settled = true));
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return !settled;
}

describe('WorkQueue', () => {
  it('hands keys out in the order they were added', async () => {
    const q = new WorkQueue();
    for (const k of ['a', 'b', 'c']) q.add(k);
    expect([await getNow(q), await getNow(q), await getNow(q)]).toEqual(['a', 'b', 'c']);
  });

  it('de-duplicates a key that is waiting', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.len()).toBe(2);
    expect(await getNow(q)).toBe('a');
    expect(await getNow(q)).toBe('b');
    expect(q.len()).toBe(0);
  });

  it('never hands out a key that is being processed; an add meanwhile requeues it once on done()', async () => {
    const q = new WorkQueue();
    q.add('a');
    const first = await getNow(q);
    expect(first).toBe('a');
    q.add('a');
    q.add('a');
    expect(q.len()).toBe(0); // dirty, not queued: a second worker must not get it
    const second = q.get();
    expect(await isBlocked(second)).toBe(true);
    q.done('a');
    expect(await second).toBe('a');
    q.done('a');
    expect(q.len()).toBe(0);
    expect(q.processingLen()).toBe(0);
  });

  it('done() without an add meanwhile does not requeue', async () => {
    const q = new WorkQueue();
    q.add('a');
    await getNow(q);
    q.done('a');
    expect(q.len()).toBe(0);
  });

  it('wakes a waiting worker when a key arrives', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    expect(await isBlocked(waiting)).toBe(true);
    q.add('x');
    expect(await waiting).toBe('x');
    expect(q.processingLen()).toBe(1);
  });

  it('gives each of several waiting workers a different key', async () => {
    const q = new WorkQueue();
    const w1 = q.get();
    const w2 = q.get();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(new Set([await w1, await w2])).toEqual(new Set(['a', 'b']));
    expect(q.len()).toBe(0);
  });

  describe('shutDown', () => {
    it('stops intake, releases waiting workers and resolves once in-flight keys are done', async () => {
      const q = new WorkQueue();
      q.add('a');
      q.add('b');
      expect(await getNow(q)).toBe('a');
      const idle = q.get(); // takes b
      expect(await idle).toBe('b');
      const waiting = q.get();
      let drained = false;
      const shut = q.shutDown().then(() => (drained = true));
      expect(await waiting).toBeUndefined();
      q.add('c');
      expect(q.len()).toBe(0);
      expect(await q.get()).toBeUndefined();
      q.done('a');
      await Promise.resolve();
      expect(drained).toBe(false);
      q.done('b');
      await shut;
      expect(drained).toBe(true);
    });

    it('resolves at once when nothing is in flight', async () => {
      const q = new WorkQueue();
      q.add('a');
      await q.shutDown();
      expect(await q.get()).toBeUndefined();
    });
  });

  describe('delaying', () => {
    beforeEach(() => vi.useFakeTimers());
    afterEach(() => vi.useRealTimers());

    it('adds a key after the delay', async () => {
      const q = new WorkQueue();
      q.addAfter('a', 1000);
      expect(q.len()).toBe(0);
      expect(q.delayedLen()).toBe(1);
      vi.advanceTimersByTime(999);
      expect(q.len()).toBe(0);
      vi.advanceTimersByTime(1);
      expect(q.len()).toBe(1);
      expect(q.delayedLen()).toBe(0);
    });

    it('keeps the earliest of several delays for one key', async () => {
      const q = new WorkQueue();
      q.addAfter('a', 5000);
      q.addAfter('a', 1000);
      q.addAfter('a', 3000);
      expect(q.delayedLen()).toBe(1);
      vi.advanceTimersByTime(1000);
      expect(q.len()).toBe(1);
      expect(await getNow(q)).toBe('a');
      q.done('a');
      vi.advanceTimersByTime(10_000);
      expect(q.len()).toBe(0); // the later times were dropped, not fired
    });

    it('orders delayed keys by due time', async () => {
      const q = new WorkQueue();
      q.addAfter('late', 300);
      q.addAfter('early', 100);
      q.addAfter('middle', 200);
      vi.advanceTimersByTime(300);
      expect([await getNow(q), await getNow(q), await getNow(q)]).toEqual(['early', 'middle', 'late']);
    });

    it('a delay of zero adds at once', async () => {
      const q = new WorkQueue();
      q.addAfter('a', 0);
      expect(q.len()).toBe(1);
    });

    it('a delayed key that comes due while processing is requeued after done()', async () => {
      const q = new WorkQueue();
      q.add('a');
      await getNow(q);
      q.addAfter('a', 100);
      vi.advanceTimersByTime(100);
      expect(q.len()).toBe(0);
      q.done('a');
      expect(q.len()).toBe(1);
    });

    it('drops delayed keys on shutdown', async () => {
      const q = new WorkQueue();
      q.addAfter('a', 100);
      await q.shutDown();
      vi.advanceTimersByTime(1000);
      expect(q.len()).toBe(0);
    });
  });

  describe('rate limiting', () => {
    beforeEach(() => vi.useFakeTimers());
    afterEach(() => vi.useRealTimers());

    it('backs a failing key off exponentially until forget()', async () => {
      const q = new WorkQueue({ rateLimiter: new ItemExponentialRateLimiter(5, 1_000_000) });
      const delays: number[] = [];
      for (let i = 0; i < 4; i++) {
        q.addRateLimited('k');
        let waited = 0;
        while (q.len() === 0) {
          vi.advanceTimersByTime(1);
          waited++;
        }
        delays.push(waited);
        await getNow(q);
        q.done('k');
      }
      expect(delays).toEqual([5, 10, 20, 40]);
      expect(q.numRequeues('k')).toBe(4);
      q.forget('k');
      expect(q.numRequeues('k')).toBe(0);
      q.addRateLimited('k');
      vi.advanceTimersByTime(5);
      expect(q.len()).toBe(1);
    });
  });
  describe('idleForMs', () => {
    it('is 0 while a key is being processed, and counts from the moment the last one is done', async () => {
      let now = 1_000;
      const q = new WorkQueue({ now: () => now });
      expect(q.idleForMs()).toBe(Number.POSITIVE_INFINITY);
      q.add('a');
      q.add('b');
      await getNow(q);
      await getNow(q);
      q.done('a');
      now += 50;
      expect(q.idleForMs()).toBe(0); // b is still being processed
      q.done('b');
      now += 300;
      expect(q.idleForMs()).toBe(300);
      q.addAfter('c', 10_000); // delayed, not due: still idle
      expect(q.idleForMs()).toBe(300);
    });

    it('does not count keys no worker takes: a replica that is not the leader is idle', async () => {
      let now = 1_000;
      const q = new WorkQueue({ now: () => now });
      q.add('a');
      q.add('b');
      now += 5_000;
      expect(q.len()).toBe(2);
      expect(q.idleForMs()).toBe(Number.POSITIVE_INFINITY);
    });
  });

});
