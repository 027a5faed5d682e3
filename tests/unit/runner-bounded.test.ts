// drainBounded: at most `limit` items in flight, and a failure — of the work or of pulling the
// next item — stops the pulling while what is in flight finishes before the caller hears of it.
// serializeByKey: calls with one key one at a time, in order; other keys alongside.
import { describe, expect, it } from 'vitest';
import { drainBounded, serializeByKey } from '../../task-runner/services/bounded.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('drainBounded', () => {
  it('keeps at most `limit` in flight and drains every item', async () => {
    const items = [1, 2, 3, 4, 5, 6, 7];
    let inFlight = 0;
    let most = 0;
    const done: number[] = [];
    await drainBounded(() => items.shift(), 3, async (n) => {
      most = Math.max(most, ++inFlight);
      await sleep(5);
      inFlight--;
      done.push(n);
    });
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(most).toBe(3);
  });

  it('when pulling fails, stops pulling and lets the work in flight finish before rejecting', async () => {
    let pulls = 0;
    const finished: number[] = [];
    const claim = new Error('claim failed: Redis went away');
    const run = drainBounded(
      async () => {
        pulls++;
        if (pulls === 3) throw claim;
        return pulls;
      },
      2,
      async (n) => {
        await sleep(n === 2 ? 40 : 1);
        finished.push(n);
      },
    );
    await expect(run).rejects.toBe(claim);
    expect(finished).toContain(2); // the slow item finished before the rejection
    expect(pulls).toBe(3);
  });

  it('rejects with the first error of the work, after the rest in flight finished', async () => {
    const items = [1, 2, 3, 4];
    const finished: number[] = [];
    const run = drainBounded(() => items.shift(), 2, async (n) => {
      if (n === 1) throw new Error('one');
      await sleep(20);
      finished.push(n);
    });
    await expect(run).rejects.toThrow('one');
    expect(finished).toEqual([2]);
  });
});

describe('serializeByKey', () => {
  it('runs the calls of one key one at a time and in order, those of other keys alongside', async () => {
    const run = serializeByKey();
    const inFlight = new Map<string, number>();
    const most = new Map<string, number>();
    const order: string[] = [];
    let overall = 0;
    let mostOverall = 0;
    const call = (key: string, n: number, ms: number) =>
      run(key, async () => {
        inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
        most.set(key, Math.max(most.get(key) ?? 0, inFlight.get(key)!));
        mostOverall = Math.max(mostOverall, ++overall);
        await sleep(ms);
        inFlight.set(key, inFlight.get(key)! - 1);
        overall--;
        order.push(`${key}${n}`);
        return n;
      });
    // The first call of `a` is the slowest: the later ones still wait for it.
    const results = await Promise.all([call('a', 1, 30), call('a', 2, 1), call('b', 1, 5), call('a', 3, 1), call('b', 2, 5)]);
    expect(results).toEqual([1, 2, 1, 3, 2]);
    expect(order.filter((o) => o.startsWith('a'))).toEqual(['a1', 'a2', 'a3']);
    expect(order.filter((o) => o.startsWith('b'))).toEqual(['b1', 'b2']);
    expect(Object.fromEntries(most)).toEqual({ a: 1, b: 1 });
    expect(mostOverall).toBe(2);
  });

  it('settles each call as its work does, and a failure does not hold up the next call of its key', async () => {
    const run = serializeByKey();
    const failed = run('a', async () => {
      await sleep(5);
      throw new Error('store failed');
    });
    const next = run('a', async () => 'next');
    await expect(failed).rejects.toThrow('store failed');
    await expect(next).resolves.toBe('next');
  });
});
