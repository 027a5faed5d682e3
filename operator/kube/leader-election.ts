// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it:
//   - acquire: take the lease when it is free, released, or its holder has not renewed it for
//     leaseDuration — measured on OUR clock from when we last saw the record change, so clock
//     skew between replicas does not matter;
//   - renew every retryPeriod; if no renewal succeeds for renewDeadline, or another holder shows
//     up, leadership is lost and onStoppedLeading is called (the process must stop reconciling);
//   - release on graceful shutdown (holder cleared, duration 1 s) so the standby takes over at
//     its next retry instead of waiting out the lease;
//   - every write carries the resourceVersion it was based on (optimistic concurrency), so two
//     candidates can never both win the same round.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { HttpMethod } from '@kubernetes/client-node';
import { describeError, isConflict, isNotFound } from './errors.ts';
import { microTime } from './events.ts';
import type { RawApi } from './raw-api.ts';
import { LEASES, apiVersionOf, collectionPath, objectPath } from './resources.ts';
import { sleep } from './sleep.ts';

export interface LeaseRecord {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseRecord;
}

export interface LeaderElectionTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry. */
export const DEFAULT_TIMING: LeaderElectionTiming = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };
const JITTER = 1.2;

// ------------------------------------------------------------------------------- pure parts

/** Throws unless lease > renewDeadline > retryPeriod·jitter: otherwise a leader could lose the lease while still acting. */
export function validateTiming(t: LeaderElectionTiming): void {
  if (!(t.leaseDurationMs > t.renewDeadlineMs)) throw new Error(`leaseDuration (${t.leaseDurationMs} ms) must be greater than renewDeadline (${t.renewDeadlineMs} ms)`);
  if (!(t.renewDeadlineMs > JITTER * t.retryPeriodMs)) throw new Error(`renewDeadline (${t.renewDeadlineMs} ms) must be greater than ${JITTER} × retryPeriod (${t.retryPeriodMs} ms)`);
  if (!(t.retryPeriodMs > 0)) throw new Error('retryPeriod must be positive');
}

/** Whether another candidate holds a still-valid lease, judged from when we observed its last change. */
export function heldByOther(record: LeaseRecord | undefined, observedAtMs: number, nowMs: number, identity: string): boolean {
  if (!record?.holderIdentity || record.holderIdentity === identity) return false;
  return observedAtMs + (record.leaseDurationSeconds ?? 0) * 1000 > nowMs;
}

/** The record we write to take or keep the lease. */
export function claimRecord(current: LeaseRecord | undefined, identity: string, now: Date, leaseDurationMs: number): LeaseRecord {
  const renewing = current?.holderIdentity === identity;
  return {
    holderIdentity: identity,
    leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
    acquireTime: renewing && current?.acquireTime ? current.acquireTime : microTime(now),
    renewTime: microTime(now),
    leaseTransitions: (current?.leaseTransitions ?? 0) + (current && !renewing ? 1 : 0),
  };
}

/** The record we write when stepping down: no holder, and a 1 s duration in case a reader ignores the empty holder. */
export function releasedRecord(current: LeaseRecord, now: Date): LeaseRecord {
  return { leaseDurationSeconds: 1, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: current.leaseTransitions ?? 0 };
}

export function renewDeadlinePassed(lastRenewMs: number, nowMs: number, renewDeadlineMs: number): boolean {
  return nowMs - lastRenewMs >= renewDeadlineMs;
}

/** client-go's identity convention: host name (the pod name in a cluster) and a unique suffix. */
export function defaultIdentity(podName = process.env.POD_NAME ?? hostname()): string {
  return `${podName}_${randomUUID()}`;
}

// --------------------------------------------------------------------------------- elector

export interface LeaderElectorOptions extends Partial<LeaderElectionTiming> {
  raw: RawApi;
  log: Logger;
  namespace: string;
  name: string;
  identity: string;
  onStartedLeading: () => void;
  /** Called once when leadership is lost (not on release()). */
  onStoppedLeading: (reason: string) => void;
  onNewLeader?: (identity: string | undefined) => void;
  now?: () => number;
}

export class LeaderElector {
  readonly timing: LeaderElectionTiming;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly stopController = new AbortController();
  private leading = false;
  private loop: Promise<void> | undefined;
  /** The lease as we last saw it, and when (our clock) we saw it change. */
  private observed: { lease: Lease; atMs: number } | undefined;
  private lastLeader: string | undefined;

  constructor(private readonly opts: LeaderElectorOptions) {
    this.timing = {
      leaseDurationMs: opts.leaseDurationMs ?? DEFAULT_TIMING.leaseDurationMs,
      renewDeadlineMs: opts.renewDeadlineMs ?? DEFAULT_TIMING.renewDeadlineMs,
      retryPeriodMs: opts.retryPeriodMs ?? DEFAULT_TIMING.retryPeriodMs,
    };
    validateTiming(this.timing);
    this.now = opts.now ?? Date.now;
    this.log = opts.log.child({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Starts campaigning; the returned promise settles when the elector stops (released or lost). */
  start(): Promise<void> {
    this.loop ??= this.run();
    return this.loop;
  }

  /** Stops campaigning and, if leading, hands the lease back. Never calls onStoppedLeading. */
  async release(): Promise<void> {
    this.stopController.abort();
    await this.loop;
    if (!this.leading) return;
    this.leading = false;
    try {
      await this.writeRelease();
      this.log.info('lease released');
    } catch (err) {
      // The standby then waits out the lease duration instead: slower, still correct.
      this.log.warn({ err: describeError(err) }, 'could not release the lease');
    }
  }

  private get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  private async run(): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs } = this.timing;
    this.log.info('campaigning for leadership');
    while (!this.stopped && !(await this.tryAcquireOrRenew())) {
      await sleep(retryPeriodMs * (1 + Math.random() * (JITTER - 1)), this.stopController.signal);
    }
    if (this.stopped) return;
    this.leading = true;
    this.log.info('became leader');
    this.opts.onStartedLeading();
    let lastRenew = this.now();
    while (!this.stopped) {
      await sleep(retryPeriodMs, this.stopController.signal);
      if (this.stopped) return;
      if (await this.tryAcquireOrRenew(renewDeadlineMs - (this.now() - lastRenew))) {
        lastRenew = this.now();
        continue;
      }
      const holder = this.observed?.lease.spec?.holderIdentity;
      const reason = holder && holder !== this.opts.identity
        ? `the lease is held by ${holder}`
        : renewDeadlinePassed(lastRenew, this.now(), renewDeadlineMs) ? `no renewal succeeded for ${renewDeadlineMs} ms` : undefined;
      if (reason) {
        this.leading = false;
        this.log.error({ reason }, 'leadership lost');
        this.opts.onStoppedLeading(reason);
        return;
      }
    }
  }

  /** One round: take or renew the lease. Returns whether we hold it afterwards. */
  private async tryAcquireOrRenew(budgetMs = this.timing.renewDeadlineMs): Promise<boolean> {
    const timeoutMs = Math.max(500, Math.min(budgetMs, this.timing.renewDeadlineMs));
    const now = new Date(this.now());
    try {
      // Fast path for the leader: update from the lease we wrote last; a conflict means it changed.
      if (this.leading && this.observed) {
        try {
          await this.writeClaim(this.observed.lease, now, timeoutMs);
          return true;
        } catch (err) {
          if (!isConflict(err)) throw err;
        }
      }
      let lease: Lease;
      try {
        lease = await this.opts.raw.request<Lease>(HttpMethod.GET, objectPath(LEASES, this.opts.namespace, this.opts.name), { timeoutMs });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await this.create(now, timeoutMs);
        return true;
      }
      this.observe(lease);
      if (heldByOther(lease.spec, (this.observed as { atMs: number }).atMs, this.now(), this.opts.identity)) return false;
      await this.writeClaim(lease, now, timeoutMs);
      return true;
    } catch (err) {
      if (isConflict(err)) {
        this.log.debug('lost a lease update race');
      } else {
        this.log.warn({ err: describeError(err) }, 'lease request failed');
      }
      return false;
    }
  }

  private observe(lease: Lease): void {
    if (this.observed?.lease.metadata.resourceVersion !== lease.metadata.resourceVersion) {
      this.observed = { lease, atMs: this.now() };
    }
    const holder = lease.spec?.holderIdentity || undefined;
    if (holder !== this.lastLeader) {
      this.lastLeader = holder;
      this.log.info({ leader: holder ?? null }, 'leader changed');
      this.opts.onNewLeader?.(holder);
    }
  }

  private async create(now: Date, timeoutMs: number): Promise<void> {
    const body: Lease = {
      apiVersion: apiVersionOf(LEASES),
      kind: LEASES.kind,
      metadata: { name: this.opts.name, namespace: this.opts.namespace },
      spec: claimRecord(undefined, this.opts.identity, now, this.timing.leaseDurationMs),
    };
    this.observe(await this.opts.raw.request<Lease>(HttpMethod.POST, collectionPath(LEASES, this.opts.namespace), { body, timeoutMs }));
  }

  private async writeClaim(base: Lease, now: Date, timeoutMs: number): Promise<void> {
    const body: Lease = { ...base, spec: claimRecord(base.spec, this.opts.identity, now, this.timing.leaseDurationMs) };
    this.observe(await this.opts.raw.request<Lease>(HttpMethod.PUT, objectPath(LEASES, this.opts.namespace, this.opts.name), { body, timeoutMs }));
  }

  private async writeRelease(): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const lease = attempt === 0 && this.observed
        ? this.observed.lease
        : await this.opts.raw.request<Lease>(HttpMethod.GET, objectPath(LEASES, this.opts.namespace, this.opts.name));
      if (lease.spec?.holderIdentity !== this.opts.identity) return; // someone else holds it already
      try {
        const body: Lease = { ...lease, spec: releasedRecord(lease.spec, new Date(this.now())) };
        this.observe(await this.opts.raw.request<Lease>(HttpMethod.PUT, objectPath(LEASES, this.opts.namespace, this.opts.name), { body }));
        return;
      } catch (err) {
        // Our last renewal may have landed after we stopped looking: read it and try once more.
        if (!isConflict(err) || attempt > 0) throw err;
      }
    }
  }
}
