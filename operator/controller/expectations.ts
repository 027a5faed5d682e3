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
//
// The event that is the write itself (the object at exactly the resourceVersion the write
// returned) does not bring the task back either: the reconcile that wrote it already worked from
// that state, so another would read the same world and write nothing. Measured while 1,000 tasks
// were created, these echoes were most of the operator's 2.6 reconciles per task. The echo can
// arrive before the write's own response (both come over the same connection), so events of an
// object with a write in flight are held until the response says which one is the echo; any
// other event held meanwhile sends the task round again. Unless a reconcile of the task was put
// off while it waited for this write: then the echo is what it waited for, and brings it back.
export type WrittenKind = 'task' | 'cronJob';

/** The cache had no such object when it was written (the write created it). */
export const ABSENT = '';

/** How long a write may stay unseen before the task is reconciled anyway. */
export const DEFAULT_EXPECTATION_TTL_MS = 10_000;

interface Expectation {
  /** resourceVersion of the cached object the write was based on; ABSENT for a create. */
  basis: string;
  /** resourceVersion the write returned: its own watch event carries it. */
  result?: string;
  /** While the write is in flight: the resourceVersions of the object's events held (undefined: a deletion). */
  held?: (string | undefined)[];
  deadline: number;
  /** A reconcile was put off until the cache shows this write: its echo must bring the task back. */
  deferred?: boolean;
}

export class WriteExpectations {
  private readonly pending = new Map<string, Expectation>();

  constructor(private readonly ttlMs = DEFAULT_EXPECTATION_TTL_MS) {}

  /**
   * Makes a write of `kind` for task `key` from the cached object at resourceVersion `basis`,
   * holding the object's events while it is in flight. `versionOf` names the resourceVersion the
   * write left (undefined: nothing was written). `again` is true when an event other than the
   * write's own arrived meanwhile: the task must be looked at again. A write that throws is
   * abandoned and its error rethrown (the reconcile is retried anyway).
   */
  async write<R>(kind: WrittenKind, key: string, basis: string, now: number, send: () => Promise<R>, versionOf: (result: R) => string | undefined): Promise<{ result: R; again: boolean }> {
    this.begin(kind, key);
    let result: R;
    try {
      result = await send();
    } catch (err) {
      this.abandon(kind, key);
      throw err;
    }
    const version = versionOf(result);
    const again = version !== undefined && version !== basis ? this.expect(kind, key, basis, now, version) : this.abandon(kind, key);
    return { result, again };
  }

  /** A write of `kind` for task `key` is about to be sent: the object's events are held until `expect` or `abandon`. */
  begin(kind: WrittenKind, key: string): void {
    this.pending.set(id(kind, key), { basis: ABSENT, held: [], deadline: Number.POSITIVE_INFINITY });
  }

  /**
   * Records a write of `kind` for task `key`, made from the cached object at resourceVersion
   * `basis`, that left the object at resourceVersion `result`. True when an event other than the
   * write's own arrived while it was in flight: the task must be looked at again.
   */
  expect(kind: WrittenKind, key: string, basis: string, now: number, result?: string): boolean {
    const held = this.pending.get(id(kind, key))?.held ?? [];
    if (result !== undefined && held.includes(result)) this.pending.delete(id(kind, key)); // the cache has it already
    else this.pending.set(id(kind, key), { basis, result, deadline: now + this.ttlMs });
    return held.some((rv) => rv === undefined || rv !== result);
  }

  /** The write was not made (nothing to change, or it failed). True when events of the object arrived meanwhile. */
  abandon(kind: WrittenKind, key: string): boolean {
    const e = this.pending.get(id(kind, key));
    this.pending.delete(id(kind, key));
    return (e?.held?.length ?? 0) > 0;
  }

  /**
   * An event of the object arrived: whatever it is, the cache has moved on from the basis.
   * True when the event is not to bring the task back: it is the awaited write itself
   * (`resourceVersion` is the one the write returned), or it is held while a write is in flight.
   */
  observed(kind: WrittenKind, key: string, resourceVersion?: string): boolean {
    const e = this.pending.get(id(kind, key));
    if (!e) return false;
    if (e.held) {
      e.held.push(resourceVersion);
      return true;
    }
    this.pending.delete(id(kind, key));
    return resourceVersion !== undefined && resourceVersion === e.result && !e.deferred;
  }

  /** Forgets every expectation of a task (it is gone). */
  forget(key: string): void {
    this.pending.delete(id('task', key));
    this.pending.delete(id('cronJob', key));
  }

  /**
   * How long to wait for the cache to show a write of `kind` for `key`, given the resourceVersion
   * the cache holds now (ABSENT for none); 0 when there is nothing to wait for. A caller that
   * waits is owed a reconcile when the write shows up, so its echo is no longer suppressed.
   */
  waitMs(kind: WrittenKind, key: string, cached: string, now: number): number {
    const e = this.pending.get(id(kind, key));
    if (!e || e.held) return 0;
    if (e.basis !== cached || now >= e.deadline) {
      this.pending.delete(id(kind, key));
      return 0;
    }
    e.deferred = true;
    return e.deadline - now;
  }

  get size(): number {
    return this.pending.size;
  }
}

const id = (kind: WrittenKind, key: string): string => `${kind}\u0000${key}`;
