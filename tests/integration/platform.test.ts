// The platform is real: the kind cluster's controllers, kubelet, DNS, RBAC and admission, the
// project's images, and host Postgres/Redis all behave as the product depends on them to.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { Redis } from 'ioredis';
import {
  createNamespace, deleteNamespace, describeEvents, kubectl, kubectlJson, kubectlRaw, waitFor, waitForPodTermination,
} from '../support/kube.ts';
import { ROOT } from '../support/platform.ts';

const RUNTIME = 'bgtask.local/node-runtime:24';
const restricted = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

function pod(name: string, spec: Record<string, unknown>) {
  return JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { restartPolicy: 'Never', ...spec } });
}

let ns: string;
beforeAll(async () => { ns = await createNamespace('platform'); });
afterAll(async () => { await deleteNamespace(ns); });

describe('the kind cluster', () => {
  it('runs a CronJob on schedule (real CronJob controller and kubelet), and a Job created from it at once', async () => {
    const cronJob = {
      apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'every-minute' },
      spec: {
        schedule: '* * * * *', concurrencyPolicy: 'Forbid',
        jobTemplate: { spec: { backoffLimit: 0, template: { spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'main', image: RUNTIME, args: ['-e', 'console.log("tick")'] }],
        } } } },
      },
    };
    await kubectl(['-n', ns, 'apply', '-f', '-'], { input: JSON.stringify(cronJob) });
    await kubectl(['-n', ns, 'create', 'job', 'manual-run', '--from=cronjob/every-minute']);
    await kubectl(['-n', ns, 'wait', '--for=condition=Complete', 'job/manual-run', '--timeout=90s']);
    expect(await kubectl(['-n', ns, 'logs', 'job/manual-run'])).toContain('tick');
    // The schedule fires at the next minute boundary: at most ~60 s plus pod start.
    const scheduled = await waitFor('a Job created by the CronJob controller', async () => {
      const jobs = await kubectlJson<any>(['-n', ns, 'get', 'jobs']);
      // `create job --from` also sets the CronJob as owner: the scheduled one is the other Job.
      return jobs.items.find((j: any) => j.metadata.name !== 'manual-run' && j.metadata.ownerReferences?.[0]?.kind === 'CronJob'
        && j.status?.conditions?.some((c: any) => c.type === 'Complete' && c.status === 'True'));
    }, 150_000, 2000).catch(async (e) => { throw new Error(`${e.message}\n${await describeEvents(ns)}`); });
    expect(scheduled.metadata.name).toMatch(/^every-minute-\d+$/);
  });

  it('runs a Node 24 pod from the runtime image as non-root, read-only, no capabilities, RuntimeDefault seccomp, and it reaches the API by cluster DNS', async () => {
    const script = `
      const https = require('node:https'); const fs = require('node:fs'); const dns = require('node:dns');
      const sa = '/var/run/secrets/kubernetes.io/serviceaccount/';
      dns.lookup('kubernetes.default.svc', (err, addr) => {
        if (err) { console.error('dns', err.message); process.exit(3); }
        https.get({ host: 'kubernetes.default.svc', path: '/version', ca: fs.readFileSync(sa + 'ca.crt'),
          headers: { authorization: 'Bearer ' + fs.readFileSync(sa + 'token', 'utf8') } }, (res) => {
          let body = ''; res.on('data', (d) => body += d);
          res.on('end', () => { console.log(JSON.stringify({ uid: process.getuid(), addr, node: process.version,
            status: res.statusCode, git: JSON.parse(body).gitVersion })); });
        }).on('error', (e) => { console.error('api', e.message); process.exit(4); });
      });
      try { fs.writeFileSync('/rootfs-write-test', 'x'); console.error('root filesystem is writable'); process.exit(5); } catch {}`;
    await kubectl(['-n', ns, 'apply', '-f', '-'], { input: pod('node-restricted', {
      securityContext: { runAsUser: 10001, runAsGroup: 10001 },
      containers: [{ name: 'main', image: RUNTIME, args: ['-e', script], securityContext: restricted }],
    }) });
    const t = await waitForPodTermination(ns, 'node-restricted', 90_000);
    const logs = await kubectl(['-n', ns, 'logs', 'node-restricted']);
    expect(t.exitCode, logs).toBe(0);
    const out = JSON.parse(logs.trim().split('\n').pop()!);
    expect(out).toMatchObject({ uid: 10001, status: 200, git: 'v1.34.4' });
    expect(out.node).toMatch(/^v24\./);
  });

  it('ends a pod over its memory limit OOMKilled with exit 137', async () => {
    await kubectl(['-n', ns, 'apply', '-f', '-'], { input: pod('oom', {
      containers: [{
        name: 'main', image: RUNTIME, securityContext: restricted,
        args: ['-e', 'const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1));'],
        resources: { limits: { memory: '64Mi' }, requests: { memory: '64Mi' } },
      }],
    }) });
    const t = await waitForPodTermination(ns, 'oom', 90_000);
    expect(t).toMatchObject({ reason: 'OOMKilled', exitCode: 137 });
  });

  it('serves Postgres and Redis from the project images to other pods', async () => {
    await kubectl(['-n', ns, 'apply', '-f', `${ROOT}/hack/manifests/services.yaml`]);
    for (const d of ['postgres', 'redis']) await kubectl(['-n', ns, 'rollout', 'status', `deployment/${d}`, '--timeout=120s']);
    const secretEnv = (key: string, name: string) => ({ name, valueFrom: { secretKeyRef: { name: 'bgtask-services', key } } });
    await kubectl(['-n', ns, 'apply', '-f', '-'], { input: pod('pg-client', {
      containers: [{ name: 'main', image: 'bgtask.local/postgres:15', securityContext: restricted,
        // Ready pods are not yet reachable everywhere: the Service's rules reach kube-proxy a moment
        // later (a CI run's first connection failed). Wait as a client would, then ask once.
        command: ['sh', '-c', 'for i in $(seq 30); do pg_isready -q -h postgres && break; sleep 1; done; psql -h postgres -U postgres -d bgtask -tAc "select 40 + 2"'],
        env: [secretEnv('postgres-password', 'PGPASSWORD')] }],
    }) });
    await kubectl(['-n', ns, 'apply', '-f', '-'], { input: pod('redis-client', {
      containers: [{ name: 'main', image: 'bgtask.local/redis:7', securityContext: restricted,
        command: ['sh', '-c', 'for i in $(seq 30); do [ "$(redis-cli -h redis -a "$REDIS_PASSWORD" --no-auth-warning ping 2>/dev/null)" = PONG ] && break; sleep 1; done; redis-cli -h redis -a "$REDIS_PASSWORD" --no-auth-warning set k v && redis-cli -h redis -a "$REDIS_PASSWORD" --no-auth-warning get k'],
        env: [secretEnv('redis-password', 'REDIS_PASSWORD')] }],
    }) });
    expect(await waitForPodTermination(ns, 'pg-client', 60_000)).toMatchObject({ exitCode: 0 });
    expect((await kubectl(['-n', ns, 'logs', 'pg-client'])).trim()).toBe('42');
    expect(await waitForPodTermination(ns, 'redis-client', 60_000)).toMatchObject({ exitCode: 0 });
    expect((await kubectl(['-n', ns, 'logs', 'redis-client'])).trim()).toBe('OK\nv');
    // A wrong password is refused: the Secret really guards the database.
    await kubectl(['-n', ns, 'apply', '-f', '-'], { input: pod('pg-wrong-password', {
      containers: [{ name: 'main', image: 'bgtask.local/postgres:15', securityContext: restricted,
        command: ['psql', '-h', 'postgres', '-U', 'postgres', '-d', 'bgtask', '-c', 'select 1'],
        env: [{ name: 'PGPASSWORD', value: 'wrong' }] }],
    }) });
    expect((await waitForPodTermination(ns, 'pg-wrong-password', 60_000)).exitCode).not.toBe(0);
    expect(await kubectl(['-n', ns, 'logs', 'pg-wrong-password'])).toContain('password authentication failed');
  });

  it('enforces a CRD OpenAPI schema and its CEL rule in the apiserver', async () => {
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
      metadata: { name: 'gadgets.platform-test.bgtask.local' },
      spec: {
        group: 'platform-test.bgtask.local', scope: 'Namespaced',
        names: { plural: 'gadgets', singular: 'gadget', kind: 'Gadget' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: {
          type: 'object',
          properties: { spec: {
            type: 'object',
            properties: { min: { type: 'integer' }, max: { type: 'integer' } },
            'x-kubernetes-validations': [{ rule: 'self.min <= self.max', message: 'min must not exceed max' }],
          } },
        } } }],
      },
    };
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(crd) });
    await kubectl(['wait', '--for=condition=Established', 'crd/gadgets.platform-test.bgtask.local', '--timeout=30s']);
    const gadget = (min: number, max: number) => JSON.stringify({ apiVersion: 'platform-test.bgtask.local/v1', kind: 'Gadget', metadata: { name: `g-${min}-${max}` }, spec: { min, max } });
    await waitFor('the CRD to be served', async () => (await kubectlRaw(['-n', ns, 'get', 'gadgets'])).code === 0, 30_000);
    const bad = await kubectlRaw(['-n', ns, 'create', '-f', '-'], { input: gadget(5, 1) });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('min must not exceed max');
    const typeError = await kubectlRaw(['-n', ns, 'create', '-f', '-'], { input: gadget(1, 2).replace('"max":2', '"max":"two"') });
    expect(typeError.stderr).toContain('spec.max');
    expect((await kubectlRaw(['-n', ns, 'create', '-f', '-'], { input: gadget(1, 2) })).code).toBe(0);
    await kubectlRaw(['delete', 'crd', 'gadgets.platform-test.bgtask.local', '--wait=false']);
  });

  it('enforces RBAC: a ServiceAccount token is denied a verb its Role lacks', async () => {
    await kubectl(['-n', ns, 'create', 'serviceaccount', 'reader']);
    await kubectl(['-n', ns, 'create', 'role', 'pod-reader', '--verb=get,list', '--resource=pods']);
    await kubectl(['-n', ns, 'create', 'rolebinding', 'reader', '--role=pod-reader', `--serviceaccount=${ns}:reader`]);
    const token = (await kubectl(['-n', ns, 'create', 'token', 'reader', '--duration=10m'])).trim();
    const server = (await kubectl(['config', 'view', '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}'])).trim();
    const asReader = ['--server', server, '--token', token, '--insecure-skip-tls-verify=true', '--kubeconfig=/dev/null'];
    expect((await kubectlRaw([...asReader, '-n', ns, 'get', 'pods'], { kubeconfig: '/dev/null' })).code).toBe(0);
    const denied = await kubectlRaw([...asReader, '-n', ns, 'delete', 'pod', 'oom'], { kubeconfig: '/dev/null' });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/forbidden.*cannot delete resource "pods"/);
  });
});

describe('host services', () => {
  it('Postgres and Redis answer on their loopback ports', async () => {
    const client = new pg.Client({ connectionString: inject('pgUrl') });
    await client.connect();
    try {
      expect((await client.query('select 6 * 7 as n')).rows[0].n).toBe(42);
    } finally {
      await client.end();
    }
    const redis = new Redis(inject('redisUrl'), { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    try {
      expect(await redis.ping()).toBe('PONG');
    } finally {
      redis.disconnect();
    }
  });
});
