// N workers draining the work queue into reconcile(key) — controller-runtime's reconcile loop.
// A failure requeues the key with its backoff; a success forgets the backoff and, when asked,
// requeues it after the given delay. The queue guarantees one worker per key at a time.
import type { Logger } from 'pino';
import { IncompleteReconcileError, StaleObjectError, causedBy, describeError } from './errors.ts';
import { WritesFencedError } from './raw-api.ts';
import type { WorkQueue } from './workqueue.ts';

export interface ReconcileResult {
  /** Reconcile this key again after this long (the next schedule, the next retry). */
  requeueAfterMs?: number;
}

export type Reconcile = (key: string) => Promise<ReconcileResult>;

/** What the controller reports to metrics; kept small so tests can record it. */
export interface ControllerObserver {
  reconciled(result: 'success' | 'requeue' | 'error', seconds: number): void;
}

export interface ControllerOptions {
  queue: WorkQueue;
  reconcile: Reconcile;
  workers: number;
  log: Logger;
  observer?: ControllerObserver;
}

export class Controller {
  private workers: Promise<void>[] = [];

  constructor(private readonly opts: ControllerOptions) {
    if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new Error(`workers must be a positive integer, got ${opts.workers}`);
  }

  start(): void {
    if (this.workers.length > 0) throw new Error('controller already started');
    this.opts.log.info({ workers: this.opts.workers }, 'starting workers');
    for (let i = 0; i < this.opts.workers; i++) this.workers.push(this.work());
  }

  /**
   * Stops intake and waits for in-flight reconciles, at most timeoutMs. Returns whether they all
   * finished in time (if not, the process is about to exit anyway; their writes are idempotent).
   */
  async stop(timeoutMs: number): Promise<boolean> {
    const drained = this.opts.queue.shutDown().then(() => Promise.all(this.workers)).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([drained, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async work(): Promise<void> {
    const { queue, log, observer } = this.opts;
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      const started = performance.now();
      try {
        const result = await this.opts.reconcile(key);
        queue.forget(key);
        const after = result?.requeueAfterMs;
        if (after !== undefined && after >= 0) queue.addAfter(key, after);
        observer?.reconciled(after !== undefined ? 'requeue' : 'success', (performance.now() - started) / 1000);
      } catch (err) {
        queue.addRateLimited(key, err instanceof IncompleteReconcileError ? err.requeueAfterMs : undefined);
        observer?.reconciled('error', (performance.now() - started) / 1000);
        // A cache behind a write of someone else's is routine (the runner's report, say), and so is
        // a write stopped on the way out (leadership lost): neither is an error.
        if (causedBy(err, WritesFencedError)) log.info({ key, error: describeError(err) }, 'reconcile stopped: writes are fenced');
        else if (causedBy(err, StaleObjectError)) log.debug({ key, err, error: describeError(err), requeues: queue.numRequeues(key) }, 'reconcile computed from a stale copy: requeued with backoff');
        else log.error({ key, err, error: describeError(err), requeues: queue.numRequeues(key) }, 'reconcile failed: requeued with backoff');
      } finally {
        queue.done(key);
      }
    }
  }
}
