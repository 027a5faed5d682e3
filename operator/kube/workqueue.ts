// The controller's work queue, with client-go's semantics (util/workqueue):
//   - fair: keys come out in the order they went in;
//   - stingy: a key waiting in the queue is there once, however often it is added;
//   - one at a time: a key being processed is not handed out again; adding it meanwhile marks it
//     dirty and it is queued once more when its worker calls done();
//   - delaying: addAfter(key, ms) queues it later, and the earliest of several pending times wins;
//   - rate limited: addRateLimited(key) waits by the key's failure count until forget(key).
import { defaultControllerRateLimiter, type RateLimiter } from './rate-limiter.ts';

export interface WorkQueueOptions {
  rateLimiter?: RateLimiter;
  now?: () => number;
}

interface Delayed {
  at: number;
  key: string;
}

export class WorkQueue {
  private readonly rateLimiter: RateLimiter;
  private readonly now: () => number;
  /** FIFO of keys ready to hand out; `head` avoids O(n) shifts. */
  private queue: string[] = [];
  private head = 0;
  /** Keys that need processing: queued, or to be requeued once their worker is done. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly getters: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;
  private drainWaiters: (() => void)[] = [];
  /** Delayed keys: the time each becomes ready (the earliest asked for), and a min-heap of them. */
  private readonly waiting = new Map<string, number>();
  private readonly heap: Delayed[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  /** When the last key being processed was done; -Infinity before any work. */
  private idleSince = Number.NEGATIVE_INFINITY;

  constructor(opts: WorkQueueOptions = {}) {
    this.rateLimiter = opts.rateLimiter ?? defaultControllerRateLimiter();
    this.now = opts.now ?? Date.now;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // requeued by done()
    this.enqueue(key);
  }

  /** The next key, waiting for one if none is ready; undefined once the queue shuts down. */
  get(): Promise<string | undefined> {
    if (this.head < this.queue.length) return Promise.resolve(this.take());
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Marks a key's processing finished; if it was added meanwhile, it is queued again. */
  done(key: string): void {
    if (!this.processing.delete(key)) return;
    if (this.dirty.has(key) && !this.shuttingDown) this.enqueue(key);
    if (this.processing.size === 0) {
      this.idleSince = this.now();
      this.notifyDrained();
    }
  }

  /**
   * How long no key has been processed, in ms: 0 while one is. Keys waiting with no worker to take
   * them (a replica that is not the leader fills its queue and never works it) do not count.
   */
  idleForMs(): number {
    if (this.processing.size > 0) return 0;
    return this.now() - this.idleSince;
  }

  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = this.now() + delayMs;
    const pending = this.waiting.get(key);
    if (pending !== undefined && pending <= at) return;
    this.waiting.set(key, at);
    this.heapPush({ at, key });
    this.armTimer();
  }

  /** Adds the key after its backoff, or after `atMostMs` if that is sooner (the failure still counts). */
  addRateLimited(key: string, atMostMs = Number.POSITIVE_INFINITY): void {
    this.addAfter(key, Math.min(this.rateLimiter.when(key), atMostMs));
  }

  /** Ends the key's backoff (after a success). It does not unqueue the key. */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  /** Keys ready to be handed out (not those being processed or delayed). */
  len(): number {
    return this.queue.length - this.head;
  }

  /** Keys waiting for their addAfter time. */
  delayedLen(): number {
    return this.waiting.size;
  }

  processingLen(): number {
    return this.processing.size;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * Stops intake: adds are ignored, waiting workers get undefined, queued and delayed keys are
   * dropped (a successor rebuilds them from its informers' initial lists). Resolves when every
   * key being processed is done.
   */
  shutDown(): Promise<void> {
    if (!this.shuttingDown) {
      this.shuttingDown = true;
      clearTimeout(this.timer);
      this.timer = undefined;
      this.queue = [];
      this.head = 0;
      this.waiting.clear();
      this.heap.length = 0;
      for (const resolve of this.getters.splice(0)) resolve(undefined);
    }
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private enqueue(key: string): void {
    const getter = this.getters.shift();
    if (getter) {
      this.processing.add(key);
      this.dirty.delete(key);
      getter(key);
      return;
    }
    this.queue.push(key);
  }

  private take(): string {
    const key = this.queue[this.head++] as string;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.processing.add(key);
    this.dirty.delete(key);
    return key;
  }

  private notifyDrained(): void {
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  // ------------------------------------------------------------------- delayed keys

  private armTimer(): void {
    const next = this.heap[0];
    if (!next || next.at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = next.at;
    this.timer = setTimeout(() => this.fireDue(), Math.max(0, next.at - this.now()));
    this.timer.unref();
  }

  private fireDue(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.now();
    while (this.heap.length > 0 && (this.heap[0] as Delayed).at <= now) {
      const { at, key } = this.heapPop();
      // A stale entry: the key was re-scheduled earlier, or already fired.
      if (this.waiting.get(key) !== at) continue;
      this.waiting.delete(key);
      this.add(key);
    }
    this.armTimer();
  }

  private heapPush(item: Delayed): void {
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((h[parent] as Delayed).at <= item.at) break;
      h[i] = h[parent] as Delayed;
      i = parent;
    }
    h[i] = item;
  }

  private heapPop(): Delayed {
    const h = this.heap;
    const top = h[0] as Delayed;
    const last = h.pop() as Delayed;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let smallest = i;
        const atOf = (j: number): number => (j === i ? last.at : (h[j] as Delayed).at);
        if (l < h.length && atOf(l) < atOf(smallest)) smallest = l;
        if (r < h.length && atOf(r) < atOf(smallest)) smallest = r;
        if (smallest === i) break;
        h[i] = h[smallest] as Delayed;
        i = smallest;
      }
      h[i] = last;
    }
    return top;
  }
}
