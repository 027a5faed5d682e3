// Kubernetes Events (events.k8s.io/v1) about BackgroundTasks, for `kubectl describe` and
// `kubectl events`. The same (object, type, reason, action, note) again within the series window
// does not create another Event: it raises the first one's series count, and those updates are
// batched (one PATCH per flush interval), so a task failing every minute makes one Event, not
// hundreds. Recording never fails the caller: a write that fails is logged, and one that failed
// for a passing reason (no answer, 429, 5xx) is tried again with exponential backoff, a few times.
// Events yield to the state they describe: while the controller is busy (holdWhile), new Events
// wait, for at most maxHoldMs, so a burst of reconciles (a thousand tasks applied at once) gets
// its CronJobs and statuses written first, without an Event write beside each on the same
// apiserver; they follow as soon as the controller is idle.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { HttpMethod, PatchStrategy } from '@kubernetes/client-node';
import { API_GROUP } from '../../crds/schema.ts';
import { describeError, isConflict, isNotFound, isTransient } from './errors.ts';
import type { RawApi } from './raw-api.ts';
import { EVENTS, collectionPath, objectPath } from './resources.ts';
import type { KubeObject } from './types.ts';

export const REPORTING_CONTROLLER = `${API_GROUP}/bgtask-operator`;
const MAX_NOTE_BYTES = 1024;
const DEFAULT_ACTION = 'Reconcile';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorder {
  /**
   * Records an event about `regarding`: `reason` is UpperCamelCase (e.g. RunFailed), `note` is for
   * humans, `action` is what the operator did or is doing (default Reconcile). Returns at once;
   * the write happens in the background.
   */
  record(regarding: KubeObject, type: EventType, reason: string, note: string, action?: string): void;
  /** Writes pending series updates now and waits for every write in flight. */
  flush(): Promise<void>;
}

/** Where Events are written: the apiserver (apiEventSink) in the operator. */
export interface EventSink {
  create(namespace: string, body: EventBody): Promise<void>;
  /** Rejects with a 404 ApiException when the Event no longer exists. */
  patchSeries(namespace: string, name: string, series: { count: number; lastObservedTime: string }): Promise<void>;
}

export function apiEventSink(raw: RawApi): EventSink {
  return {
    async create(namespace, body) {
      await raw.request(HttpMethod.POST, collectionPath(EVENTS, namespace), { body });
    },
    async patchSeries(namespace, name, series) {
      await raw.request(HttpMethod.PATCH, objectPath(EVENTS, namespace, name), { body: { series }, contentType: PatchStrategy.MergePatch });
    },
  };
}

export interface EventRecorderOptions {
  sink: EventSink;
  log: Logger;
  /** reportingInstance: the pod name. */
  instance: string;
  /** Repeats within this window join the first Event's series. Default 6 min (as client-go). */
  seriesWindowMs?: number;
  /** Series counts are written at most this often per Event. Default 10 s. */
  seriesFlushMs?: number;
  /** Remembered (object, reason, note) combinations; the oldest are forgotten first. Default 4096. */
  maxEntries?: number;
  /** The longest a new Event waits while the controller is busy (see holdWhile). Default 30 s. */
  maxHoldMs?: number;
  /** How often held Events check whether they may go. Default 200 ms. */
  holdPollMs?: number;
  /** Event writes in flight at once (four times as many in flush()): a held burst must not meet the apiserver's fairness limits all at once. Default 4. */
  maxInFlight?: number;
  /** Tries again of a write that failed for a passing reason. Default 5. */
  maxRetries?: number;
  /** The first try again waits this long, each next one twice as long (at most 30 s). Default 1 s. */
  retryBaseMs?: number;
  now?: () => Date;
}

interface SeriesEntry {
  name: string;
  namespace: string;
  body: EventBody;
  count: number;
  lastObserved: Date;
  /** Count already written to the server. */
  written: number;
  flushTimer: NodeJS.Timeout | undefined;
  /** Tries again since the last write that went through, and the next one's timer. */
  retries: number;
  retryTimer: NodeJS.Timeout | undefined;
  /** The entry's writes, in order: a series update must not overtake the create. */
  chain: Promise<void>;
}

export interface EventBody {
  apiVersion: 'events.k8s.io/v1';
  kind: 'Event';
  metadata: { name: string; namespace: string };
  eventTime: string;
  reportingController: string;
  reportingInstance: string;
  action: string;
  reason: string;
  type: EventType;
  note: string;
  regarding: { apiVersion?: string; kind?: string; name?: string; namespace?: string; uid?: string; resourceVersion?: string };
  series?: { count: number; lastObservedTime: string };
}

/** MicroTime as the apiserver parses it: RFC 3339 with exactly six fractional digits. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** The dedup key of an event: same object, type, reason, action and note. */
export function eventKey(regarding: KubeObject, type: EventType, reason: string, note: string, action: string): string {
  const m = regarding.metadata;
  return [m?.uid ?? `${m?.namespace}/${m?.name}`, type, reason, action, note].join('\u0000');
}

function truncateNote(note: string): string {
  if (Buffer.byteLength(note) <= MAX_NOTE_BYTES) return note;
  let out = note.slice(0, MAX_NOTE_BYTES);
  while (Buffer.byteLength(out) > MAX_NOTE_BYTES - 3) out = out.slice(0, -1);
  return `${out}...`;
}

export class KubeEventRecorder implements EventRecorder {
  private readonly entries = new Map<string, SeriesEntry>();
  /** Entries waiting to try a write again: flush() finds them even once retired from `entries`. */
  private readonly retrying = new Set<SeriesEntry>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly now: () => Date;
  private lastSweep = 0;
  /** Writes waiting for a slot (see slot()), oldest first. */
  private readonly held: { since: number; release: () => void }[] = [];
  private writing = 0;
  private holdTimer: NodeJS.Timeout | undefined;
  private busy: () => boolean = () => false;
  /** flush() calls under way: held writes go without waiting for the controller. */
  private draining = 0;
  readonly stats = { created: 0, seriesUpdates: 0, failures: 0, retries: 0 };

  constructor(private readonly opts: EventRecorderOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  record(regarding: KubeObject, type: EventType, reason: string, note: string, action = DEFAULT_ACTION): void {
    const now = this.now();
    this.sweep(now);
    const key = eventKey(regarding, type, reason, note, action);
    const entry = this.entries.get(key);
    if (entry && now.getTime() - entry.lastObserved.getTime() <= this.windowMs) {
      entry.count++;
      entry.lastObserved = now;
      this.scheduleSeriesFlush(entry);
      return;
    }
    if (entry) this.retire(key, entry);
    const created = this.newEntry(regarding, type, reason, action, note, now);
    this.entries.set(key, created);
    this.evictOldest();
    this.enqueue(created, () => this.create(created));
  }

  /** New Events wait while `busy` says so (at most maxHoldMs each). */
  holdWhile(busy: () => boolean): void {
    this.busy = busy;
  }

  async flush(): Promise<void> {
    this.draining++;
    try {
      this.pump();
      for (const entry of new Set([...this.entries.values(), ...this.retrying])) {
        if (entry.flushTimer || entry.retryTimer) {
          clearTimeout(entry.flushTimer);
          clearTimeout(entry.retryTimer);
          entry.flushTimer = entry.retryTimer = undefined;
          this.retrying.delete(entry);
          this.enqueue(entry, () => this.writeSeries(entry));
        }
      }
      while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
    } finally {
      this.draining--;
    }
  }

  private newEntry(regarding: KubeObject, type: EventType, reason: string, action: string, note: string, now: Date): SeriesEntry {
    const m = regarding.metadata ?? {};
    const namespace = m.namespace ?? 'default';
    // client-go names events <object>.<unix nanos in hex>; a random suffix does the same job.
    const name = `${m.name ?? 'object'}.${now.getTime().toString(16)}${randomBytes(4).toString('hex')}`;
    const body: EventBody = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name, namespace },
      eventTime: microTime(now),
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.opts.instance,
      action,
      reason,
      type,
      note: truncateNote(note),
      regarding: { apiVersion: regarding.apiVersion, kind: regarding.kind, name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion },
    };
    return { name, namespace, body, count: 1, lastObserved: now, written: 0, flushTimer: undefined, retries: 0, retryTimer: undefined, chain: Promise.resolve() };
  }

  private scheduleSeriesFlush(entry: SeriesEntry): void {
    if (entry.flushTimer) return;
    entry.flushTimer = setTimeout(() => {
      entry.flushTimer = undefined;
      this.enqueue(entry, () => this.writeSeries(entry));
    }, this.opts.seriesFlushMs ?? 10_000);
    entry.flushTimer.unref();
  }

  private enqueue(entry: SeriesEntry, write: () => Promise<void>): void {
    const p = entry.chain.then(write).then(
      () => {
        entry.retries = 0;
      },
      (err: unknown) => {
        this.stats.failures++;
        // Not while shutting down: the process ends before any timer would fire.
        const retryInMs = isTransient(err) && entry.retries < (this.opts.maxRetries ?? 5) && this.draining === 0 ? this.scheduleRetry(entry) : undefined;
        this.opts.log.warn({ err: describeError(err), event: entry.name, namespace: entry.namespace, reason: entry.body.reason, retryInMs }, 'could not record event');
      },
    );
    entry.chain = p;
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  /** Writes the entry's unwritten count again after a backoff; returns the delay. */
  private scheduleRetry(entry: SeriesEntry): number {
    const delayMs = Math.min((this.opts.retryBaseMs ?? 1000) * 2 ** entry.retries, 30_000);
    entry.retries++;
    this.stats.retries++;
    clearTimeout(entry.retryTimer);
    this.retrying.add(entry);
    entry.retryTimer = setTimeout(() => {
      entry.retryTimer = undefined;
      this.retrying.delete(entry);
      this.enqueue(entry, () => this.writeSeries(entry));
    }, delayMs);
    entry.retryTimer.unref();
    return delayMs;
  }

  private async create(entry: SeriesEntry): Promise<void> {
    await this.slot();
    try {
      // The count sent, not the count when the answer comes: a repeat meanwhile is still to write.
      const count = entry.count;
      const body = count > 1 ? { ...entry.body, series: this.series(entry) } : entry.body;
      await this.opts.sink.create(entry.namespace, body);
      entry.written = count;
      this.stats.created++;
    } catch (err) {
      // Its name is ours alone: an earlier try was made after all, its answer lost. The series
      // it carried is unknown; the next series update writes the whole count.
      if (!isConflict(err) || entry.retries === 0) throw err;
      entry.written = 1;
    } finally {
      this.freeSlot();
    }
  }

  private async writeSeries(entry: SeriesEntry): Promise<void> {
    if (entry.count === entry.written) return;
    if (entry.written === 0) {
      await this.create(entry); // the create failed earlier: try it again, with the series
      if (entry.count === entry.written) return;
    }
    await this.slot();
    try {
      const count = entry.count;
      await this.opts.sink.patchSeries(entry.namespace, entry.name, this.series(entry));
      entry.written = count;
      this.stats.seriesUpdates++;
      return;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    } finally {
      this.freeSlot();
    }
    // The Event expired (events live about an hour): start over under a new name.
    entry.name = `${entry.body.regarding.name ?? 'object'}.${this.now().getTime().toString(16)}${randomBytes(4).toString('hex')}`;
    entry.body = { ...entry.body, metadata: { name: entry.name, namespace: entry.namespace }, eventTime: microTime(this.now()) };
    entry.count = 1;
    entry.written = 0;
    await this.create(entry);
  }

  private series(entry: SeriesEntry): { count: number; lastObservedTime: string } {
    return { count: entry.count, lastObservedTime: microTime(entry.lastObserved) };
  }

  /**
   * Resolves when a write may start: at most maxInFlight at once, and, while the controller is
   * busy, only writes that have waited maxHoldMs. Every resolved slot must be given back (freeSlot).
   */
  private slot(): Promise<void> {
    return new Promise((release) => {
      this.held.push({ since: this.now().getTime(), release });
      this.pump();
    });
  }

  private freeSlot(): void {
    this.writing--;
    this.pump();
  }

  /** Starts the held writes that may go now; polls again while some must still wait. */
  private pump(): void {
    // Shutting down (flush): what is held goes out faster, within the shutdown's few seconds.
    const max = (this.opts.maxInFlight ?? 4) * (this.draining > 0 ? 4 : 1);
    if (this.writing >= max || this.held.length === 0) return;
    const upTo = this.draining > 0 || !this.busy() ? Number.POSITIVE_INFINITY : this.now().getTime() - (this.opts.maxHoldMs ?? 30_000);
    while (this.writing < max && this.held.length > 0 && this.held[0]!.since <= upTo) {
      this.writing++;
      this.held.shift()!.release();
    }
    if (this.held.length > 0 && this.writing < max && !this.holdTimer) {
      this.holdTimer = setTimeout(() => {
        this.holdTimer = undefined;
        this.pump();
      }, this.opts.holdPollMs ?? 200);
      this.holdTimer.unref();
    }
  }

  private get windowMs(): number {
    return this.opts.seriesWindowMs ?? 6 * 60_000;
  }

  /** Forgets, now and then, combinations not seen for a whole window: they cannot join a series any more. */
  private sweep(now: Date): void {
    const t = now.getTime();
    if (t - this.lastSweep < this.windowMs / 2) return;
    this.lastSweep = t;
    for (const [key, entry] of this.entries) {
      if (t - entry.lastObserved.getTime() > this.windowMs) this.retire(key, entry);
    }
  }

  /** Drops an entry; a count not written yet goes out with one last write rather than being lost. */
  private retire(key: string, entry: SeriesEntry): void {
    if (entry.flushTimer) {
      clearTimeout(entry.flushTimer);
      entry.flushTimer = undefined;
      this.enqueue(entry, () => this.writeSeries(entry));
    }
    this.entries.delete(key);
  }

  private evictOldest(): void {
    const max = this.opts.maxEntries ?? 4096;
    while (this.entries.size > max) {
      const [key, entry] = this.entries.entries().next().value as [string, SeriesEntry];
      this.retire(key, entry);
    }
  }
}
