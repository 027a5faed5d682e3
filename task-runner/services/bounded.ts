/**
 * Runs `work` over items pulled from `next()` with at most `limit` in flight. Stops pulling when
 * `next()` returns undefined or `stop()` says so; waits for everything in flight either way, and
 * rejects with the first error `work` threw (the others still finish, so nothing is left
 * half-done behind the caller's back).
 */
export async function drainBounded<T>(
  next: () => T | undefined | Promise<T | undefined>,
  limit: number,
  work: (item: T) => Promise<void>,
  stop: () => boolean = () => false,
): Promise<void> {
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (!failure && !stop()) {
      try {
        // A failing next() (a claim from Redis, say) stops the pulling like a failing work(),
        // and the others still finish what they hold before the caller hears of it.
        const item = await next();
        if (item === undefined) return;
        await work(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  if (failure) throw failure.err;
}

/**
 * Runs calls with the same key one after another, in the order they were made, and calls with other
 * keys alongside: `run(key, work)` starts `work` once every earlier call with `key` has settled, and
 * settles as `work` does (a failure does not hold up the next call).
 */
export function serializeByKey(): <T>(key: string, work: () => Promise<T>) => Promise<T> {
  /** Per key, the last call made, settled or not; never rejects. */
  const tails = new Map<string, Promise<void>>();
  return (key, work) => {
    const result = (tails.get(key) ?? Promise.resolve()).then(work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    tails.set(key, tail);
    // The key is forgotten once its last call has settled.
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return result;
  };
}
