// A shared informer for one kind (client-go's reflector + indexer + event distribution):
// list, then watch from the list's resourceVersion with bookmarks, and keep the store and the
// event handlers in step with the server, whatever happens to the connection:
//   - 410 Gone (the resourceVersion was compacted away), as an HTTP answer or an ERROR event → relist;
//   - the server ending the watch (its timeoutSeconds) → watch again from the last resourceVersion;
//   - a failed request or a broken stream → retry with exponential backoff;
//   - a silent stall (no event and no bookmark for stallTimeoutMs; the server bookmarks about
//     once a minute, so a healthy watch is never quiet for long) → abort the watch and relist.
// client-node's ListWatch stops for good on most errors and has no stall detection; hence this.
import type { Logger } from 'pino';
import { ApiException, HttpMethod } from '@kubernetes/client-node';
import { describeError, isGone } from './errors.ts';
import { objectKey } from './keys.ts';
import type { RawApi, WatchEvent } from './raw-api.ts';
import { apiVersionOf, collectionPath, type ResourceType } from './resources.ts';
import { backoffDelay, sleep } from './sleep.ts';
import { Store, type IndexFunc, type ReadonlyStore } from './store.ts';
import type { KubeObject } from './types.ts';

export interface EventHandler<T> {
  onAdd?(obj: T): void;
  /** Also called by a periodic resync with old === obj. */
  onUpdate?(old: T, obj: T): void;
  /** obj is the last state the informer knew (after a relist it may be older than the deletion). */
  onDelete?(obj: T): void;
}

export interface InformerOptions<T extends KubeObject> {
  /** For logs and health checks; default the resource's plural. */
  name?: string;
  raw: RawApi;
  resource: ResourceType;
  log: Logger;
  /** One namespace, or every namespace when unset. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  indexers?: Record<string, IndexFunc<T>>;
  /** Applied to every object on ingest, to keep only what the operator reads; default stripManagedFields. */
  transform?: (obj: KubeObject) => KubeObject;
  /** No event and no bookmark for this long means the watch is dead: abort it and relist. Default 90 s. */
  stallTimeoutMs?: number;
  /** Server-side watch timeout; default random 5–10 min (as client-go), spreading reconnects. */
  watchTimeoutSeconds?: () => number;
  /** Items per list page. Default 500. */
  pageSize?: number;
  listTimeoutMs?: number;
  /** Re-deliver every cached object as an update this often; off when unset. */
  resyncPeriodMs?: number;
  backoffInitialMs?: number;
  /** Default 10 s. */
  backoffMaxMs?: number;
}

export interface InformerStats {
  lists: number;
  /** Relists caused by 410 Gone. */
  expired: number;
  /** Watches aborted because they went silent. */
  stalls: number;
  watchErrors: number;
  listErrors: number;
  events: number;
  bookmarks: number;
}

/** An informer of any kind, as seen by whoever starts, stops and health-checks it. */
export type InformerHandle = Pick<Informer<KubeObject>, 'name' | 'start' | 'stop' | 'hasSynced' | 'waitForSync' | 'silenceMs' | 'stats'>;

/** Thrown into the watch when it has gone silent. */
class WatchStalledError extends Error {
  override readonly name = 'WatchStalledError';
}

const MIN_HEALTHY_WATCH_MS = 1000;

export class Informer<T extends KubeObject> {
  readonly name: string;
  readonly store: ReadonlyStore<T>;
  readonly stats: InformerStats = { lists: 0, expired: 0, stalls: 0, watchErrors: 0, listErrors: 0, events: 0, bookmarks: 0 };
  private readonly cache: Store<T>;
  private readonly handlers: EventHandler<T>[] = [];
  private readonly path: string;
  private readonly apiVersion: string;
  private readonly transform: (obj: KubeObject) => T;
  private readonly stallTimeoutMs: number;
  private readonly log: Logger;
  private readonly stopController = new AbortController();
  private loop: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private synced = false;
  private lastProgressAt = Date.now();
  private resourceVersion = '';

  constructor(private readonly opts: InformerOptions<T>) {
    this.name = opts.name ?? opts.resource.plural;
    this.cache = new Store<T>(opts.indexers);
    this.store = this.cache;
    this.path = collectionPath(opts.resource, opts.namespace);
    this.apiVersion = apiVersionOf(opts.resource);
    // T is what the apiserver sends for this resource (less what the transform drops): trusted, not checked.
    const transform = opts.transform ?? stripManagedFields;
    this.transform = (obj) => transform(obj) as T;
    this.stallTimeoutMs = opts.stallTimeoutMs ?? 90_000;
    this.log = opts.log.child({ informer: this.name, ...(opts.namespace ? { namespace: opts.namespace } : {}) });
  }

  /** Registers handlers; objects already cached are delivered to them as adds. */
  addEventHandler(handler: EventHandler<T>): void {
    this.handlers.push(handler);
    for (const obj of this.cache.list()) this.call(handler, 'onAdd', obj);
  }

  /** True once the first full list has been stored and delivered. */
  hasSynced(): boolean {
    return this.synced;
  }

  /** Milliseconds since the informer last heard from the server (an event, a bookmark, a list). */
  silenceMs(now = Date.now()): number {
    return now - this.lastProgressAt;
  }

  /** The resourceVersion the informer has caught up to ('' before the first list or when relisting). */
  lastSyncResourceVersion(): string {
    return this.resourceVersion;
  }

  start(): void {
    if (this.loop) throw new Error(`informer for ${this.path} already started`);
    this.loop = this.run();
    if (this.opts.resyncPeriodMs) {
      this.resyncTimer = setInterval(() => this.resync(), this.opts.resyncPeriodMs);
      this.resyncTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopController.abort();
    clearInterval(this.resyncTimer);
    await this.loop;
  }

  /** Resolves when synced; rejects if the signal aborts first. */
  async waitForSync(signal?: AbortSignal, pollMs = 50): Promise<void> {
    while (!this.synced) {
      if (signal?.aborted) throw new Error(`stopped before ${this.path} synced`, { cause: signal.reason });
      await sleep(pollMs, signal);
    }
  }

  private get stopping(): boolean {
    return this.stopController.signal.aborted;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      try {
        if (!this.resourceVersion) {
          this.resourceVersion = await this.relist();
          failures = 0;
        }
        const healthy = await this.watch();
        failures = healthy ? 0 : failures + 1;
        if (failures > 0) await sleep(this.backoff(failures), this.stopController.signal);
      } catch (err) {
        if (this.stopping) break;
        // A watch's 410 means relist now; a list's own 410 (its continue token expired) is retried with backoff.
        if (isGone(err) && this.resourceVersion) {
          this.stats.expired++;
          this.log.info({ resourceVersion: this.resourceVersion }, 'resourceVersion expired (410): relisting');
          this.resourceVersion = '';
          continue;
        }
        failures++;
        const delay = this.backoff(failures);
        this.log.warn({ err: describeError(err), attempt: failures, retryInMs: delay, relist: !this.resourceVersion }, 'list/watch failed: retrying');
        await sleep(delay, this.stopController.signal);
      }
    }
  }

  // Capped at 10 s, not client-go's 30: after an apiserver restart the caches are back within
  // seconds of it answering, and a handful of informers retrying every 10 s costs the server nothing.
  private backoff(attempt: number): number {
    return backoffDelay(attempt, this.opts.backoffInitialMs ?? 800, this.opts.backoffMaxMs ?? 10_000);
  }

  /** Lists every page and brings the store (and the handlers) in line with it; returns the list's resourceVersion. */
  private async relist(): Promise<string> {
    const seen = new Set<string>();
    let continueToken: string | undefined;
    let resourceVersion = '';
    this.stats.lists++;
    try {
      do {
        const page = await this.opts.raw.request<{ items?: KubeObject[]; metadata?: { resourceVersion?: string; continue?: string } }>(
          HttpMethod.GET,
          this.path,
          {
            query: {
              limit: this.opts.pageSize ?? 500,
              continue: continueToken,
              labelSelector: this.opts.labelSelector,
              fieldSelector: this.opts.fieldSelector,
            },
            timeoutMs: this.opts.listTimeoutMs ?? 60_000,
            signal: this.stopController.signal,
          },
        );
        for (const item of page.items ?? []) {
          // List items come without apiVersion and kind; watch events carry them. Keep one shape.
          item.apiVersion = this.apiVersion;
          item.kind = this.opts.resource.kind;
          seen.add(this.ingest(item));
        }
        continueToken = page.metadata?.continue || undefined;
        resourceVersion = page.metadata?.resourceVersion ?? '';
      } while (continueToken);
    } catch (err) {
      this.stats.listErrors++;
      throw err;
    }
    for (const key of [...this.cache.keys()]) {
      if (seen.has(key)) continue;
      const gone = this.cache.remove(key) as T;
      this.emit('onDelete', gone);
    }
    this.lastProgressAt = Date.now();
    if (!this.synced) this.log.info({ objects: this.cache.size, resourceVersion }, 'synced');
    this.synced = true;
    if (!resourceVersion) throw new Error(`list ${this.path} returned no resourceVersion`);
    return resourceVersion;
  }

  /** Stores an object from a list or an ADDED/MODIFIED event and tells the handlers; returns its key. */
  private ingest(raw: KubeObject): string {
    const obj = this.transform(raw);
    const key = objectKey(obj);
    const old = this.cache.upsert(obj);
    if (!old) this.emit('onAdd', obj);
    else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit('onUpdate', old, obj);
    return key;
  }

  /**
   * One watch, from this.resourceVersion, until it ends. Returns whether it was healthy (it lasted
   * or delivered something): a server that closes every watch at once must not be hammered.
   * Throws on request/stream errors and on 410 (the caller relists).
   */
  private async watch(): Promise<boolean> {
    const abort = new AbortController();
    const onStop = (): void => abort.abort(this.stopController.signal.reason);
    this.stopController.signal.addEventListener('abort', onStop, { once: true });
    let stallTimer: NodeJS.Timeout | undefined;
    const armStallTimer = (): void => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => abort.abort(new WatchStalledError(`no event or bookmark for ${this.stallTimeoutMs} ms`)), this.stallTimeoutMs);
    };
    const startedAt = Date.now();
    let delivered = 0;
    armStallTimer();
    try {
      await this.opts.raw.watch<KubeObject>(
        this.path,
        {
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: this.opts.watchTimeoutSeconds?.() ?? 300 + Math.floor(Math.random() * 300),
          labelSelector: this.opts.labelSelector,
          fieldSelector: this.opts.fieldSelector,
        },
        (event) => {
          armStallTimer();
          this.lastProgressAt = Date.now();
          delivered++;
          this.handleEvent(event);
        },
        abort.signal,
      );
      return delivered > 0 || Date.now() - startedAt >= MIN_HEALTHY_WATCH_MS;
    } catch (err) {
      if (this.stopping) return true;
      if (abort.signal.reason instanceof WatchStalledError) {
        this.stats.stalls++;
        this.log.warn({ resourceVersion: this.resourceVersion, stallTimeoutMs: this.stallTimeoutMs }, 'watch went silent: relisting');
        this.resourceVersion = '';
        return true;
      }
      if (!isGone(err)) this.stats.watchErrors++;
      throw err;
    } finally {
      clearTimeout(stallTimer);
      this.stopController.signal.removeEventListener('abort', onStop);
    }
  }

  private handleEvent(event: WatchEvent<KubeObject>): void {
    const { type, object } = event;
    switch (type) {
      case 'ADDED':
      case 'MODIFIED':
        this.stats.events++;
        this.ingest(object);
        break;
      case 'DELETED': {
        this.stats.events++;
        const last = this.transform(object);
        this.cache.remove(objectKey(last));
        this.emit('onDelete', last);
        break;
      }
      case 'BOOKMARK':
        this.stats.bookmarks++;
        break;
      case 'ERROR': {
        // A Status object: 410 means relist; anything else ends this watch and it is retried.
        const status = object as { code?: number; reason?: string; message?: string };
        throw new ApiException(status.code ?? 500, `watch ${this.path}: ${status.reason ?? 'Error'}: ${status.message ?? ''}`, status, {});
      }
      default:
        throw new Error(`watch ${this.path}: unknown event type ${JSON.stringify(type)}`);
    }
    const rv = object.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
  }

  private resync(): void {
    if (!this.synced) return;
    for (const obj of this.cache.list()) this.emit('onUpdate', obj, obj);
  }

  private emit(kind: 'onAdd' | 'onDelete', obj: T): void;
  private emit(kind: 'onUpdate', old: T, obj: T): void;
  private emit(kind: keyof EventHandler<T>, a: T, b?: T): void {
    for (const h of this.handlers) this.call(h, kind, a, b);
  }

  // A handler's bug must not stop the informer (the store would drift from the server), so its
  // exception is logged, loudly, and the next handler still runs.
  private call(h: EventHandler<T>, kind: keyof EventHandler<T>, a: T, b?: T): void {
    try {
      if (kind === 'onUpdate') h.onUpdate?.(a, b as T);
      else h[kind]?.(a);
    } catch (err) {
      this.log.error({ err, handler: kind, key: objectKey(b ?? a) }, 'event handler threw');
    }
  }
}

/**
 * The default transform: drops metadata.managedFields and kubectl's last-applied annotation,
 * which are often most of an object's bytes and which the operator never reads.
 */
export function stripManagedFields<T extends KubeObject>(obj: T): T {
  if (obj.metadata) {
    delete obj.metadata.managedFields;
    const annotations = obj.metadata.annotations;
    if (annotations && 'kubectl.kubernetes.io/last-applied-configuration' in annotations) {
      delete annotations['kubectl.kubernetes.io/last-applied-configuration'];
    }
  }
  return obj;
}
