// drainBounded: at most `limit` items in flight, and a failure — of the work or of pulling the
// next item — stops the pulling while what is in flight finishes before the caller hears of it.
import { describe, expect, it } from 'vitest';
import { drainBounded } from '../../task-runner/services/bounded.ts';

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
