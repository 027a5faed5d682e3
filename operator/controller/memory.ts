// A bounded set of things already announced (a run's finish, a queued run, a scheduled retry),
// so an Event or a metric is emitted once per run however many reconciles see it. Oldest
// entries are forgotten first; forgetting one only means a possible repeat, never a loss.
export class Announced {
  private readonly seen = new Set<string>();

  constructor(private readonly capacity = 50_000) {}

  /** True the first time a key is seen. */
  first(key: string): boolean {
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    if (this.seen.size > this.capacity) this.seen.delete(this.seen.values().next().value as string);
    return true;
  }
}
