// Timers that stop early when their signal aborts: loops that wait must not hold up shutdown.

/** Resolves after ms, or as soon as signal aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Exponential backoff, initial · 2^(attempt-1) capped at max, spread by ±jitter so replicas do not retry in step. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, jitter = 0.2, random: () => number = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (1 - jitter + 2 * jitter * random()));
}
