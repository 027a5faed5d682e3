// The informer's cache: objects by key, with secondary indexes (client-go's cache.Indexer).
// Readers get the cached objects themselves, not copies: treat them as read-only.
import { objectKey } from './keys.ts';
import type { KubeObject } from './types.ts';

/** The values an object is filed under in one index; an empty array files it nowhere. */
export type IndexFunc<T> = (obj: T) => readonly string[];

export interface ReadonlyStore<T extends KubeObject> {
  get(namespace: string | undefined, name: string): T | undefined;
  getByKey(key: string): T | undefined;
  /** Every object, or those of one namespace. */
  list(namespace?: string): T[];
  /** The objects an index files under a value. */
  byIndex(indexName: string, value: string): T[];
  keys(): IterableIterator<string>;
  readonly size: number;
}

export class Store<T extends KubeObject> implements ReadonlyStore<T> {
  private readonly items = new Map<string, T>();
  private readonly byNamespace = new Map<string, Set<string>>();
  /** index name → value → keys */
  private readonly indices = new Map<string, Map<string, Set<string>>>();

  constructor(private readonly indexers: Record<string, IndexFunc<T>> = {}) {
    for (const name of Object.keys(indexers)) this.indices.set(name, new Map());
  }

  get size(): number {
    return this.items.size;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.items.get(namespace ? `${namespace}/${name}` : name);
  }

  getByKey(key: string): T | undefined {
    return this.items.get(key);
  }

  list(namespace?: string): T[] {
    if (namespace === undefined) return [...this.items.values()];
    const keys = this.byNamespace.get(namespace);
    return keys ? [...keys].map((k) => this.items.get(k) as T) : [];
  }

  byIndex(indexName: string, value: string): T[] {
    const index = this.indices.get(indexName);
    if (!index) throw new Error(`no index named ${JSON.stringify(indexName)}`);
    const keys = index.get(value);
    return keys ? [...keys].map((k) => this.items.get(k) as T) : [];
  }

  keys(): IterableIterator<string> {
    return this.items.keys();
  }

  /** Adds or replaces an object; returns the one it replaced. */
  upsert(obj: T): T | undefined {
    const key = objectKey(obj);
    const old = this.items.get(key);
    if (old) this.unindex(key, old);
    this.items.set(key, obj);
    this.index(key, obj);
    return old;
  }

  /** Removes an object by key; returns it if it was there. */
  remove(key: string): T | undefined {
    const old = this.items.get(key);
    if (!old) return undefined;
    this.unindex(key, old);
    this.items.delete(key);
    return old;
  }

  private index(key: string, obj: T): void {
    addTo(this.byNamespace, obj.metadata?.namespace ?? '', key);
    for (const [name, fn] of Object.entries(this.indexers)) {
      const index = this.indices.get(name) as Map<string, Set<string>>;
      for (const value of fn(obj)) addTo(index, value, key);
    }
  }

  private unindex(key: string, obj: T): void {
    removeFrom(this.byNamespace, obj.metadata?.namespace ?? '', key);
    for (const [name, fn] of Object.entries(this.indexers)) {
      const index = this.indices.get(name) as Map<string, Set<string>>;
      for (const value of fn(obj)) removeFrom(index, value, key);
    }
  }
}

function addTo(index: Map<string, Set<string>>, value: string, key: string): void {
  let keys = index.get(value);
  if (!keys) index.set(value, (keys = new Set()));
  keys.add(key);
}

function removeFrom(index: Map<string, Set<string>>, value: string, key: string): void {
  const keys = index.get(value);
  if (!keys) return;
  keys.delete(key);
  if (keys.size === 0) index.delete(value); // no empty sets left behind by churn
}

// ------------------------------------------------------------------------------ common indexes

/** Index name: the UIDs of an object's owners. */
export const OWNER_UID_INDEX = 'ownerUid';
export const ownerUidIndex: IndexFunc<KubeObject> = (obj) => (obj.metadata?.ownerReferences ?? []).map((o) => o.uid);

/** An index on one label's value, within the object's namespace (`namespace/value`). */
export function labelIndex(label: string): IndexFunc<KubeObject> {
  return (obj) => {
    const value = obj.metadata?.labels?.[label];
    return value === undefined ? [] : [`${obj.metadata?.namespace ?? ''}/${value}`];
  };
}
