// Leader election on a real Lease: one leader among candidates, a fast hand-over on release, a
// takeover within the lease duration when the leader stops renewing (its connection cut by a TCP
// proxy), and a leader that finds the lease taken stepping down.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pino from 'pino';
import { KubeConfig } from '@kubernetes/client-node';
import { LeaderElector } from '../../operator/kube/leader-election.ts';
import { RawApi } from '../../operator/kube/raw-api.ts';
import { createNamespace, deleteNamespace, kubectl, kubectlJson, uniqueName, waitFor } from '../support/kube.ts';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const TIMING = { leaseDurationMs: 6_000, renewDeadlineMs: 3_000, retryPeriodMs: 500 };

/** A TCP relay to the apiserver that can be cut, as a network partition would. */
class TcpRelay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  async start(target: URL): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(Number(target.port), target.hostname);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  async cut(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

interface Candidate {
  id: string;
  elector: LeaderElector;
  ledAt?: number;
  lostAt?: number;
  lostReason?: string;
}

describe('LeaderElector against the apiserver', () => {
  let ns: string;
  let kc: KubeConfig;
  const candidates: Candidate[] = [];

  function candidate(id: string, leaseName: string, config = kc): Candidate {
    const c: Candidate = { id } as Candidate;
    c.elector = new LeaderElector({
      raw: new RawApi(config),
      log: log.child({ candidate: id }),
      namespace: ns,
      name: leaseName,
      identity: id,
      ...TIMING,
      onStartedLeading: () => (c.ledAt = Date.now()),
      onStoppedLeading: (reason) => {
        c.lostAt = Date.now();
        c.lostReason = reason;
      },
    });
    candidates.push(c);
    return c;
  }

  const holder = async (lease: string): Promise<string | undefined> =>
    (await kubectlJson<{ spec?: { holderIdentity?: string } }>(['-n', ns, 'get', 'lease', lease])).spec?.holderIdentity;

  beforeAll(async () => {
    ns = await createNamespace('kube-leader');
    kc = new KubeConfig();
    kc.loadFromFile(inject('kubeconfig'));
  });

  afterAll(async () => {
    await Promise.all(candidates.map((c) => c.elector.release()));
    if (ns) await deleteNamespace(ns);
  });

  it('elects exactly one leader, and hands over at once on release', async () => {
    const lease = uniqueName('lease');
    const a = candidate('a', lease);
    const b = candidate('b', lease);
    void a.elector.start();
    void b.elector.start();
    const first = await waitFor('a leader', async () => [a, b].find((c) => c.elector.isLeader()), 20_000, 50);
    const second = first === a ? b : a;
    await new Promise((r) => setTimeout(r, 2 * TIMING.retryPeriodMs * 2));
    expect([a, b].filter((c) => c.elector.isLeader())).toEqual([first]);
    expect(second.ledAt).toBeUndefined();
    expect(await holder(lease)).toBe(first.id);

    const releasedAt = Date.now();
    await first.elector.release();
    await waitFor('the standby to lead', async () => second.elector.isLeader(), 20_000, 20);
    const handOverMs = (second.ledAt as number) - releasedAt;
    expect(handOverMs).toBeLessThan(TIMING.leaseDurationMs / 2); // the released lease is free at once
    expect(first.lostAt).toBeUndefined(); // a release is not a loss
    expect(await holder(lease)).toBe(second.id);
    const spec = (await kubectlJson<{ spec: { leaseTransitions?: number } }>(['-n', ns, 'get', 'lease', lease])).spec;
    expect(spec.leaseTransitions).toBeGreaterThanOrEqual(1);
    await second.elector.release();
    expect(await holder(lease)).toBeUndefined();
  });

  it('when the leader stops renewing, it steps down before the standby takes over, within the lease duration', async () => {
    const lease = uniqueName('lease');
    const relay = new TcpRelay();
    const server = new URL(kc.getCurrentCluster()!.server);
    await relay.start(server);
    const viaRelay = new KubeConfig();
    viaRelay.loadFromString(kc.exportConfig());
    const cluster = viaRelay.getCurrentCluster()!;
    viaRelay.clusters = viaRelay.clusters.map((c) => (c.name === cluster.name ? { ...c, server: `https://127.0.0.1:${relay.port}` } : c));

    const a = candidate('partitioned', lease, viaRelay);
    void a.elector.start();
    await waitFor('partitioned to lead', async () => a.elector.isLeader(), 20_000, 50);
    const b = candidate('standby', lease);
    void b.elector.start();
    await new Promise((r) => setTimeout(r, 4 * TIMING.retryPeriodMs));
    expect(b.elector.isLeader()).toBe(false);

    const cutAt = Date.now();
    await relay.cut();
    await waitFor('the standby to lead', async () => b.elector.isLeader(), 30_000, 20);
    expect(a.lostAt, 'the partitioned leader must have stepped down').toBeDefined();
    expect(a.lostReason).toMatch(/no renewal succeeded/);
    expect(a.elector.isLeader()).toBe(false);
    // Never two leaders: the old one gave up (renewDeadline) before the new one could take over (leaseDuration).
    expect(a.lostAt as number).toBeLessThan(b.ledAt as number);
    expect((b.ledAt as number) - cutAt).toBeLessThanOrEqual(TIMING.leaseDurationMs + 3 * TIMING.retryPeriodMs);
    expect(await holder(lease)).toBe('standby');
  });

  it('a leader that finds the lease held by someone else steps down at once', async () => {
    const lease = uniqueName('lease');
    const a = candidate('victim', lease);
    void a.elector.start();
    await waitFor('victim to lead', async () => a.elector.isLeader(), 20_000, 50);
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    await kubectl(['-n', ns, 'patch', 'lease', lease, '--type=merge', '-p', JSON.stringify({ spec: { holderIdentity: 'intruder', renewTime: now, leaseDurationSeconds: 60 } })]);
    await waitFor('victim to step down', async () => a.lostAt, 10_000, 20);
    expect(a.lostReason).toBe('the lease is held by intruder');
    expect(await holder(lease)).toBe('intruder');
  });
});
