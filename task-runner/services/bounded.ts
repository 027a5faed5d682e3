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
