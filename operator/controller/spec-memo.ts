// The part of a reconcile that depends only on the task's spec: its validation, its desired
// CronJob and that object's hash. A task is reconciled several times for one spec (its creation,
// its CronJob's arrival, its status coming back, every later schedule), and those three were a
// fifth of the operator's CPU per task created (profiled). The spec changes only with the
// task's generation; the families config is compared by identity (a new config is a new
// object); registry and runner settings are fixed for the reconciler's life. Bounded: the
// reconciles of one spec come close together, and a miss only costs the recomputation.
import { LRUCache } from 'lru-cache';
import type { FamiliesConfig } from '../config/families.ts';
import type { Task } from './deps.ts';

interface Entry<V> {
  generation: number | undefined;
  families: FamiliesConfig;
  value: V;
}

export class SpecMemo<V> {
  private readonly entries: LRUCache<string, Entry<V>>;

  constructor(capacity = 512) {
    this.entries = new LRUCache({ max: capacity });
  }

  /** The value computed for this task's uid, generation and families config, computing it on a miss. */
  get(task: Task, families: FamiliesConfig, compute: () => V): V {
    const uid = task.metadata.uid;
    if (!uid) return compute();
    const hit = this.entries.get(uid);
    if (hit && hit.generation === task.metadata.generation && hit.families === families) return hit.value;
    const value = compute();
    this.entries.set(uid, { generation: task.metadata.generation, families, value });
    return value;
  }

  forget(uid: string | undefined): void {
    if (uid) this.entries.delete(uid);
  }

  get size(): number {
    return this.entries.size;
  }
}
