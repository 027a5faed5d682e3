import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { Controller, type ControllerObserver, type ReconcileResult } from '../../operator/kube/controller.ts';
import { IncompleteReconcileError } from '../../operator/kube/errors.ts';
import { ItemExponentialRateLimiter } from '../../operator/kube/rate-limiter.ts';
import { WorkQueue } from '../../operator/kube/workqueue.ts';

const log = pino({ level: 'silent' });

function recordingObserver(): ControllerObserver & { results: string[] } {
  const results: string[] = [];
  return { results, reconciled: (r) => void results.push(r) };
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

async function until(what: string, check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('Controller', () => {
  it('never runs one key on two workers at once, and reconciles it again after an event during processing', async () => {
    const queue = new WorkQueue();
    let running = 0;
    let maxRunning = 0;
    let calls = 0;
    const gate = deferred();
    const controller = new Controller({
      queue,
      workers: 4,
      log,
      reconcile: async () => {
        calls++;
        running++;
        maxRunning = Math.max(maxRunning, running);
        if (calls === 1) await gate.promise;
        running--;
        return {};
      },
    });
    controller.start();
    queue.add('ns/a');
    await until('first reconcile', () => calls === 1);
    queue.add('ns/a');
    queue.add('ns/a');
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toBe(1);
    gate.resolve();
    await until('second reconcile', () => calls === 2);
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toBe(2);
    expect(maxRunning).toBe(1);
    expect(await controller.stop(1000)).toBe(true);
  });

  it('requeues a failing key with growing backoff and forgets it after a success', async () => {
    const queue = new WorkQueue({ rateLimiter: new ItemExponentialRateLimiter(5, 1000) });
    const observer = recordingObserver();
    const times: number[] = [];
    const controller = new Controller({
      queue,
      workers: 2,
      log,
      observer,
      reconcile: async () => {
        times.push(performance.now());
        if (times.length <= 3) throw new Error('transient');
        return {};
      },
    });
    controller.start();
    queue.add('ns/a');
    await until('four attempts', () => times.length === 4);
    expect(observer.results).toEqual(['error', 'error', 'error', 'success']);
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    // 5 → 10 → 20 ms; timers may fire late under load, never early.
    expect(gaps[0]).toBeGreaterThanOrEqual(4);
    expect(gaps[1]).toBeGreaterThanOrEqual(9);
    expect(gaps[2]).toBeGreaterThanOrEqual(19);
    expect(queue.numRequeues('ns/a')).toBe(0);
    await controller.stop(1000);
  });

  it('retries an incomplete reconcile with backoff, but no later than the moment it was due anyway', async () => {
    // Backoff of 10 minutes from the first failure; the reconcile had a retry due in 30 ms.
    const queue = new WorkQueue({ rateLimiter: new ItemExponentialRateLimiter(600_000, 1_000_000) });
    const times: number[] = [];
    const controller = new Controller({
      queue,
      workers: 1,
      log,
      reconcile: async () => {
        times.push(Date.now());
        if (times.length === 1) throw new IncompleteReconcileError(new Error('quota'), 30);
        return {};
      },
    });
    controller.start();
    queue.add('ns/a');
    await until('the retry at the due moment', () => times.length === 2);
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(25);
    await controller.stop(1000);
  });

  it('requeues after requeueAfterMs on success', async () => {
    const queue = new WorkQueue();
    const times: number[] = [];
    const controller = new Controller({
      queue,
      workers: 1,
      log,
      reconcile: async (): Promise<ReconcileResult> => {
        times.push(Date.now());
        return times.length === 1 ? { requeueAfterMs: 50 } : {};
      },
    });
    controller.start();
    queue.add('ns/a');
    await until('the requeue', () => times.length === 2);
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(45);
    await controller.stop(1000);
  });

  it('stop() waits for in-flight reconciles, and gives up after its timeout', async () => {
    const queue = new WorkQueue();
    const gate = deferred();
    let finished = false;
    const controller = new Controller({
      queue,
      workers: 1,
      log,
      reconcile: async () => {
        await gate.promise;
        finished = true;
        return {};
      },
    });
    controller.start();
    queue.add('ns/a');
    await until('reconcile started', () => queue.processingLen() === 1);
    expect(await controller.stop(30)).toBe(false);
    const stopping = controller.stop(1000);
    gate.resolve();
    expect(await stopping).toBe(true);
    expect(finished).toBe(true);
  });

  it('rejects a worker count that is not a positive integer', () => {
    expect(() => new Controller({ queue: new WorkQueue(), workers: 0, log, reconcile: async () => ({}) })).toThrow(/workers/);
  });
});
