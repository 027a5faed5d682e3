// Fenced writes: once the lease is lost (or a shutdown's drain ran out of time), a reconcile still
// running must not write. Against a real HTTP server standing in for the apiserver.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpMethod, KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { RawApi, WritesFencedError } from '../../operator/kube/raw-api.ts';
import { writableWhenFenced } from '../../operator/kube/resources.ts';

let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

async function apiserver(): Promise<{ raw: RawApi; seen: string[] }> {
  const seen: string[] = [];
  server = createServer((req: IncomingMessage, res) => {
    seen.push(`${req.method} ${req.url}`);
    const answer = () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    // Writes of Jobs are slow, as under load: one is in flight when the fence comes.
    if (req.method === 'PATCH' && req.url?.includes('/jobs/')) setTimeout(answer, 2_000);
    else answer();
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return { raw: new RawApi(kc, { unfenced: writableWhenFenced }), seen };
}

describe('RawApi.fenceWrites', () => {
  it('aborts writes in flight and refuses new ones, but still reads and writes the lease and Events', async () => {
    const { raw, seen } = await apiserver();
    const job = '/apis/batch/v1/namespaces/a/jobs/run-1';
    const inFlight = raw.request(HttpMethod.PATCH, job, { body: { spec: { suspend: false } } });
    const refused = expect(inFlight).rejects.toBeInstanceOf(WritesFencedError);
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    const lease = raw.request(HttpMethod.PUT, '/apis/coordination.k8s.io/v1/namespaces/a/leases/bgtask-operator', { body: {} });
    raw.fenceWrites(new Error('leadership lost: renew deadline passed'));
    await lease; // a lease write in flight is not aborted
    await refused;
    expect(Date.now() - started).toBeLessThan(1_000);

    const before = seen.length;
    await expect(raw.request(HttpMethod.POST, '/apis/batch/v1/namespaces/a/jobs', { body: {} })).rejects.toThrow('writes stopped: leadership lost: renew deadline passed');
    expect(seen.length).toBe(before); // never sent
    await raw.request(HttpMethod.GET, job);
    await raw.request(HttpMethod.PUT, '/apis/coordination.k8s.io/v1/namespaces/a/leases/bgtask-operator', { body: {} });
    await raw.request(HttpMethod.POST, '/apis/events.k8s.io/v1/namespaces/a/events', { body: {} });
    expect(seen.slice(before)).toEqual([
      `GET ${job}`,
      'PUT /apis/coordination.k8s.io/v1/namespaces/a/leases/bgtask-operator',
      'POST /apis/events.k8s.io/v1/namespaces/a/events',
    ]);
    await raw.close();
  });
});
