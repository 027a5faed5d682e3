// The informer against the real apiserver: events for a real resource, and recovery from a watch
// that goes silent, a connection that breaks, and a resourceVersion the server no longer has
// (410). Faults are made by a small proxy between the informer and the apiserver that can freeze,
// reset or hold back watch streams; everything behind it is the real cluster.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pino from 'pino';
import { HttpMethod, KubeConfig } from '@kubernetes/client-node';
import { Informer } from '../../operator/kube/informer.ts';
import { RawApi } from '../../operator/kube/raw-api.ts';
import { CONFIG_MAPS } from '../../operator/kube/resources.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { createNamespace, deleteNamespace, kubectl, waitFor } from '../support/kube.ts';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

interface OpenWatch {
  upstream: IncomingMessage;
  downstream: ServerResponse;
  frozen: boolean;
}

/**
 * A plain-HTTP proxy in front of the apiserver (it adds the kubeconfig's client credentials).
 * freezeWatches() keeps open watch connections up but drops everything the server sends on them,
 * as a dead NAT entry or a hung load balancer would; resetWatches() breaks them; holdWatches
 * answers new watch requests with 503.
 */
class ApiProxy {
  readonly requests: { method: string; path: string }[] = [];
  /** TCP connections accepted from clients. */
  connections = 0;
  holdWatches = false;
  private readonly watches = new Set<OpenWatch>();
  private server: Server | undefined;
  private tls: RequestOptions = {};
  private target!: URL;
  port = 0;

  async start(kubeconfigPath: string): Promise<void> {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    this.target = new URL(kc.getCurrentCluster()!.server);
    await kc.applyToHTTPSOptions(this.tls);
    this.server = createServer((req, res) => this.forward(req, res));
    this.server.on('connection', () => this.connections++);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** A KubeConfig that reaches the apiserver through this proxy. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'proxy', server: `http://127.0.0.1:${this.port}`, skipTLSVerify: true }],
      users: [{ name: 'proxy' }],
      contexts: [{ name: 'proxy', cluster: 'proxy', user: 'proxy' }],
      currentContext: 'proxy',
    });
    return kc;
  }

  openWatches(): number {
    return this.watches.size;
  }

  freezeWatches(): void {
    for (const w of this.watches) w.frozen = true;
  }

  resetWatches(): void {
    for (const w of this.watches) {
      w.upstream.destroy();
      w.downstream.destroy();
    }
    this.watches.clear();
  }

  async stop(): Promise<void> {
    this.resetWatches();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.target);
    this.requests.push({ method: req.method ?? 'GET', path: url.pathname + url.search });
    const isWatch = url.searchParams.get('watch') === 'true';
    if (isWatch && this.holdWatches) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 503, message: 'held back by the test proxy' }));
      return;
    }
    const headers = { ...req.headers, ...(this.tls.headers ?? {}), host: this.target.host };
    const up = httpsRequest(url, { method: req.method, headers, ca: this.tls.ca, cert: this.tls.cert, key: this.tls.key });
    up.on('response', (upstream) => {
      res.writeHead(upstream.statusCode ?? 502, upstream.headers);
      if (!isWatch) {
        upstream.pipe(res);
        return;
      }
      const w: OpenWatch = { upstream, downstream: res, frozen: false };
      this.watches.add(w);
      upstream.on('data', (chunk: Buffer) => {
        if (!w.frozen) res.write(chunk);
      });
      upstream.on('end', () => {
        this.watches.delete(w);
        res.end();
      });
      upstream.on('error', () => res.destroy());
      res.on('close', () => {
        this.watches.delete(w);
        upstream.destroy();
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  }
}

type ConfigMap = KubeObject & { data?: Record<string, string> };

function recordingInformer(kc: KubeConfig, ns: string, extra: Partial<ConstructorParameters<typeof Informer<ConfigMap>>[0]> = {}) {
  const events: string[] = [];
  const informer = new Informer<ConfigMap>({
    raw: new RawApi(kc),
    resource: CONFIG_MAPS,
    namespace: ns,
    labelSelector: 'test=informer',
    log,
    ...extra,
  });
  informer.addEventHandler({
    onAdd: (o) => events.push(`add ${o.metadata?.name} ${o.data?.v ?? ''}`.trim()),
    onUpdate: (_old, o) => events.push(`update ${o.metadata?.name} ${o.data?.v ?? ''}`.trim()),
    onDelete: (o) => events.push(`delete ${o.metadata?.name}`),
  });
  return { informer, events };
}

const createCm = (ns: string, name: string, v: string) =>
  kubectl(['-n', ns, 'create', 'configmap', name, `--from-literal=v=${v}`]).then(() => kubectl(['-n', ns, 'label', 'configmap', name, 'test=informer']));

describe('Informer against the apiserver', () => {
  let ns: string;
  let direct: KubeConfig;
  const proxy = new ApiProxy();
  const running: Informer<ConfigMap>[] = [];

  beforeAll(async () => {
    ns = await createNamespace('kube-informer');
    direct = new KubeConfig();
    direct.loadFromFile(inject('kubeconfig'));
    await proxy.start(inject('kubeconfig'));
  });

  afterAll(async () => {
    await Promise.all(running.map((i) => i.stop()));
    await proxy.stop();
    if (ns) await deleteNamespace(ns);
  });

  it('sends every request of a client over one pooled connection', async () => {
    // client-node 2.0.1 makes a new connection pool per request; RawApi must not.
    const raw = new RawApi(proxy.kubeConfig());
    const before = proxy.connections;
    for (let i = 0; i < 20; i++) await raw.request(HttpMethod.GET, `/api/v1/namespaces/${ns}/configmaps`, { query: { limit: 1 } });
    // A second may open while the first is still being released after a response; never one per request.
    expect(proxy.connections - before).toBeLessThanOrEqual(2);
    await raw.close();
  });

  it('lists, then delivers add, update and delete of matching objects only', async () => {
    await createCm(ns, 'before', '1');
    const { informer, events } = recordingInformer(direct, ns);
    running.push(informer);
    informer.start();
    await informer.waitForSync();
    expect(events).toEqual(['add before 1']);

    await createCm(ns, 'during', '1');
    await kubectl(['-n', ns, 'create', 'configmap', 'unlabelled', '--from-literal=v=1']);
    // It starts matching the selector when labelled: for this watch, that is its ADDED.
    await waitFor('add during', async () => events.includes('add during 1'), 20_000, 100);
    await kubectl(['-n', ns, 'patch', 'configmap', 'during', '--type=merge', '-p', '{"data":{"v":"2"}}']);
    await waitFor('update during 2', async () => events.includes('update during 2'), 20_000, 100);
    await kubectl(['-n', ns, 'delete', 'configmap', 'during']);
    await waitFor('delete during', async () => events.includes('delete during'), 20_000, 100);

    expect(events.some((e) => e.includes('unlabelled'))).toBe(false);
    expect(informer.store.get(ns, 'during')).toBeUndefined();
    expect(informer.store.get(ns, 'before')?.data?.v).toBe('1');
    expect(informer.store.get(ns, 'before')?.metadata?.managedFields).toBeUndefined();
    expect(informer.store.get(ns, 'before')).toMatchObject({ apiVersion: 'v1', kind: 'ConfigMap' });
    expect(informer.stats.lists).toBe(1);
    await informer.stop();
  });

  it('re-delivers every cached object as an update each resync period', async () => {
    await createCm(ns, 'resync-me', '1');
    const resyncs: string[] = [];
    const informer = new Informer<ConfigMap>({ raw: new RawApi(direct), resource: CONFIG_MAPS, namespace: ns, labelSelector: 'test=informer', log, resyncPeriodMs: 200 });
    running.push(informer);
    informer.addEventHandler({ onUpdate: (old, obj) => old === obj && resyncs.push(obj.metadata?.name ?? '') });
    informer.start();
    await informer.waitForSync();
    await waitFor('two resyncs', async () => resyncs.filter((n) => n === 'resync-me').length >= 2, 10_000, 50);
    await informer.stop();
  });

  it('detects a watch that goes silent without an error, and relists', async () => {
    // Control: the same frozen watch with stall detection effectively off never hears of the new object.
    const control = recordingInformer(proxy.kubeConfig(), ns, { stallTimeoutMs: 3_600_000 });
    const subject = recordingInformer(proxy.kubeConfig(), ns, { stallTimeoutMs: 3_000 });
    running.push(control.informer, subject.informer);
    control.informer.start();
    subject.informer.start();
    await Promise.all([control.informer.waitForSync(), subject.informer.waitForSync()]);
    await waitFor('both watches open', async () => proxy.openWatches() >= 2, 10_000, 50);

    proxy.freezeWatches();
    await createCm(ns, 'after-freeze', 'x');
    await waitFor('the subject to relist and see after-freeze', async () => subject.informer.store.get(ns, 'after-freeze'), 30_000, 100);

    expect(subject.informer.stats.stalls).toBeGreaterThanOrEqual(1);
    expect(subject.informer.stats.lists).toBeGreaterThanOrEqual(2);
    expect(subject.events).toContain('add after-freeze x');
    expect(control.informer.store.get(ns, 'after-freeze')).toBeUndefined();
    expect(control.informer.stats.stalls).toBe(0);
    await Promise.all([control.informer.stop(), subject.informer.stop()]);
  });

  it('resumes after the connection breaks, without relisting', async () => {
    const { informer } = recordingInformer(proxy.kubeConfig(), ns, { backoffInitialMs: 100, backoffMaxMs: 1000 });
    running.push(informer);
    informer.start();
    await informer.waitForSync();
    await waitFor('the watch open', async () => proxy.openWatches() >= 1, 10_000, 50);
    proxy.resetWatches();
    await createCm(ns, 'after-reset', 'y');
    await waitFor('after-reset', async () => informer.store.get(ns, 'after-reset'), 30_000, 100);
    expect(informer.stats.watchErrors).toBeGreaterThanOrEqual(1);
    expect(informer.stats.lists).toBe(1); // resumed from its resourceVersion
    await informer.stop();
  });

  it('relists when the server no longer has its resourceVersion (410 Expired)', async () => {
    await createCm(ns, 'churn', '0');
    const { informer } = recordingInformer(proxy.kubeConfig(), ns, { backoffInitialMs: 200, backoffMaxMs: 1000 });
    running.push(informer);
    informer.start();
    await informer.waitForSync();
    await waitFor('the watch open', async () => proxy.openWatches() >= 1, 10_000, 50);

    // Cut the informer off; it keeps retrying from its resourceVersion and getting 503s.
    proxy.holdWatches = true;
    proxy.resetWatches();
    const oldRv = informer.lastSyncResourceVersion();
    const raw = new RawApi(direct);
    // The watch cache keeps at least 75 s of history; after that, enough writes push oldRv out.
    await new Promise((r) => setTimeout(r, 80_000));
    let n = 0;
    const expired = async (): Promise<boolean> => {
      const events: { type: string; object: { code?: number } }[] = [];
      const abort = new AbortController();
      await raw
        .watch<{ code?: number }>(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: oldRv, timeoutSeconds: 1 }, (e) => {
          events.push(e);
          abort.abort();
        }, abort.signal)
        .catch((err: unknown) => {
          if (!abort.signal.aborted) throw err;
        });
      return events[0]?.type === 'ERROR' && events[0].object.code === 410;
    };
    while (!(await expired())) {
      // The watch cache sizes itself by the event rate: on a busy apiserver it can hold a few
      // thousand events, so allow enough writes to push the old resourceVersion out.
      expect(n, 'writes needed to expire the old resourceVersion').toBeLessThan(8000);
      await Promise.all(
        Array.from({ length: 100 }, () =>
          raw.request(HttpMethod.PATCH, `/api/v1/namespaces/${ns}/configmaps/churn`, {
            body: { data: { v: String(++n) } },
            contentType: 'application/merge-patch+json',
          }),
        ),
      );
    }
    const lastValue = (await raw.request<ConfigMap>(HttpMethod.GET, `/api/v1/namespaces/${ns}/configmaps/churn`)).data?.v;

    proxy.holdWatches = false;
    await waitFor('the informer to relist and catch up', async () => informer.store.get(ns, 'churn')?.data?.v === lastValue, 60_000, 200);
    expect(informer.stats.expired).toBeGreaterThanOrEqual(1);
    expect(informer.stats.lists).toBeGreaterThanOrEqual(2);
    await informer.stop();
  }, 420_000);
});
