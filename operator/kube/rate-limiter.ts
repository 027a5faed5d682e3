// How long a failed key waits before its next attempt (client-go's workqueue rate limiters).
// The default, like client-go's DefaultControllerRateLimiter, is the larger of a per-key
// exponential backoff (5 ms doubling to 1000 s) and an overall token bucket (10/s, burst 100) so
// that a storm of failures across many keys cannot flood the apiserver.

export interface RateLimiter {
  /** The delay before the key's next attempt; counts the attempt. */
  when(key: string): number;
  /** Clears the key's failure history (after a success). */
  forget(key: string): void;
  /** Failures counted for the key since its last forget. */
  numRequeues(key: string): number;
}

export class ItemExponentialRateLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(
    private readonly baseDelayMs = 5,
    private readonly maxDelayMs = 1_000_000,
  ) {}

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    // 2^n overflows to Infinity for large n; the cap still applies.
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** n);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

/** A token bucket shared by all keys: each call reserves a token and waits until it is due. */
export class BucketRateLimiter implements RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond = 10,
    private readonly burst = 100,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  when(_key: string): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.perSecond) * 1000);
  }

  forget(_key: string): void {}

  numRequeues(_key: string): number {
    return 0;
  }
}

export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    // Every limiter must count the attempt, so no short-circuit.
    return this.limiters.map((l) => l.when(key)).reduce((a, b) => Math.max(a, b), 0);
  }

  forget(key: string): void {
    for (const l of this.limiters) l.forget(key);
  }

  numRequeues(key: string): number {
    return this.limiters.map((l) => l.numRequeues(key)).reduce((a, b) => Math.max(a, b), 0);
  }
}

export function defaultControllerRateLimiter(): RateLimiter {
  return new MaxOfRateLimiter(new ItemExponentialRateLimiter(5, 1_000_000), new BucketRateLimiter(10, 100));
}
