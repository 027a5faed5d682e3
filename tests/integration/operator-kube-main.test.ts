// The operator as main.ts wires it, two replicas in this process against the kind cluster with
// leader election: the leader reconciles, the standby is ready but idle, a graceful stop (what
// SIGTERM does) drains, releases the lease and returns 0, and the standby takes over at once.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pino from 'pino';
import { CRD_NAME, SCHEMA_HASH_ANNOTATION, crdSchemaHash } from '../../crds/definition.ts';
import { resolveSettings } from '../../operator/cli.ts';
import { runOperator } from '../../operator/main.ts';
import { createNamespace, deleteNamespace, installCrd, kubectl, kubectlJson, kubectlRaw, waitFor } from '../support/kube.ts';
import { freePort } from '../support/runner-net.ts';
import { prepareNamespace, RUNNER_IMAGE, RUNNER_SA } from './operator-harness.ts';
import { deleteReportPolicy } from '../support/runner-report-policy.ts';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

interface Replica {
  name: string;
  port: number;
  stop: AbortController;
  exit: Promise<number>;
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

const leaderGauge = async (r: Replica): Promise<string | undefined> => /^bgtask_leader (\d)$/m.exec((await get(r.port, '/metrics')).body)?.[1];

describe('operator main', () => {
  let ns: string;
  const replicas: Replica[] = [];

  async function start(name: string, opts: { crdCheckSeconds?: string; logTo?: string[] } = {}): Promise<Replica> {
    const port = await freePort();
    const settings = resolveSettings(
      {
        kubeconfig: inject('kubeconfig'),
        namespace: ns,
        leaderElect: true,
        crdCheckSeconds: opts.crdCheckSeconds,
        leaseNamespace: ns,
        runnerImage: RUNNER_IMAGE,
        metricsAddr: `127.0.0.1:${port}`,
        healthAddr: `127.0.0.1:${port}`,
        workers: '2',
      },
      { POD_NAME: name, POD_NAMESPACE: ns },
    );
    const stop = new AbortController();
    const lines = opts.logTo;
    const replicaLog = lines
      ? pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(...chunk.toString().trim().split('\n')), done()) }))
      : log.child({ replica: name });
    const r: Replica = { name, port, stop, exit: runOperator(settings, { log: replicaLog, signal: stop.signal, env: {} }) };
    replicas.push(r);
    return r;
  }

  /** Writes the families ConfigMap the replicas watch (in their own namespace). */
  const putFamilies = (text: string) =>
    kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'bgtask-families', namespace: ns }, data: { 'families.yaml': text } }) });
  /** Runs `body`, then deletes the families ConfigMap it wrote, so later tests start without one. */
  const thenRemoveFamilies = async (body: () => Promise<void>) => {
    try {
      await body();
    } finally {
      await kubectl(['-n', ns, 'delete', 'configmap', 'bgtask-families', '--ignore-not-found']);
    }
  };

  const holder = async (): Promise<string | undefined> =>
    (await kubectlJson<{ spec?: { holderIdentity?: string } }>(['-n', ns, 'get', 'lease', 'bgtask-operator'])).spec?.holderIdentity;

  beforeAll(async () => {
    ns = await createNamespace('kube-main');
    await prepareNamespace(ns);
  });

  afterAll(async () => {
    for (const r of replicas) r.stop.abort();
    await Promise.all(replicas.map((r) => r.exit));
    if (ns) await deleteNamespace(ns);
    if (ns) await deleteReportPolicy(ns, RUNNER_SA);
  });

  it('the leader reconciles; the standby is ready and idle; a graceful stop hands over', async () => {
    const a = await start('replica-a');
    await waitFor('replica-a ready', async () => (await get(a.port, '/readyz').catch(() => ({ status: 0 }))).status === 200, 30_000, 100);
    await waitFor('replica-a leading', async () => (await leaderGauge(a)) === '1', 30_000, 100);
    const b = await start('replica-b');
    await waitFor('replica-b ready', async () => (await get(b.port, '/readyz').catch(() => ({ status: 0 }))).status === 200, 30_000, 100);
    expect((await get(b.port, '/healthz')).status).toBe(200);
    expect(await leaderGauge(b)).toBe('0');
    expect(await holder()).toMatch(/^replica-a_/);

    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'workers.personal-assistant.io/v1alpha1',
        kind: 'BackgroundTask',
        metadata: { name: 'handover', namespace: ns },
        spec: { task: 'maintenance.cleanup-old-sessions', schedule: '0 3 * * *' },
      }),
    });
    await waitFor('the CronJob', async () => (await kubectlRaw(['-n', ns, 'get', 'cronjob', 'handover'])).code === 0, 30_000, 200);
    expect((await get(a.port, '/metrics')).body).toMatch(/^bgtask_reconcile_total\{result="\w+"\} [1-9]/m);
    expect((await get(b.port, '/metrics')).body).not.toMatch(/^bgtask_reconcile_total\{/m);

    const stoppedAt = Date.now();
    a.stop.abort('SIGTERM');
    expect(await a.exit).toBe(0);
    await waitFor('replica-b leading', async () => (await leaderGauge(b)) === '1', 15_000, 50);
    const takeoverMs = Date.now() - stoppedAt;
    expect(takeoverMs).toBeLessThan(15_000); // well inside the 15 s lease: released, not expired
    expect(await holder()).toMatch(/^replica-b_/);

    await kubectl(['-n', ns, 'patch', 'backgroundtask', 'handover', '--type=merge', '-p', '{"spec":{"schedule":"30 4 * * *"}}']);
    await waitFor('replica-b to update the CronJob', async () => (await kubectlJson<{ spec: { schedule: string } }>(['-n', ns, 'get', 'cronjob', 'handover'])).spec.schedule === '30 4 * * *', 30_000, 200);

    b.stop.abort('SIGTERM');
    expect(await b.exit).toBe(0);
    expect(await holder()).toBeUndefined();
    console.info(`hand-over after a graceful stop: ${takeoverMs} ms`);
  });

  it('stops reconciling and exits 1 when another holder takes the lease', async () => {
    const c = await start('replica-c');
    await waitFor('replica-c leading', async () => (await leaderGauge(c).catch(() => undefined)) === '1', 30_000, 100);
    const micro = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    await kubectl(['-n', ns, 'patch', 'lease', 'bgtask-operator', '--type=merge', '-p', JSON.stringify({ spec: { holderIdentity: 'intruder', renewTime: micro, leaseDurationSeconds: 60 } })]);
    const lostAt = Date.now();
    expect(await c.exit).toBe(1);
    expect(Date.now() - lostAt).toBeLessThan(10_000);
    expect(await holder()).toBe('intruder'); // not released: it was not ours any more
  });

  it('with a refused families ConfigMap at start, neither leads nor reconciles until a valid one arrives', async () => {
    await putFamilies('maintenance: { concurrency: lots }');
    await kubectl(['-n', ns, 'delete', 'lease', 'bgtask-operator', '--ignore-not-found']); // the intruder's, above
    await thenRemoveFamilies(async () => {
      const f = await start('replica-f');
      await waitFor('replica-f to report the refused config', async () => (await get(f.port, '/readyz').catch(() => ({ status: 0, body: '' }))).body.includes('families config refused'), 30_000, 100);
      expect((await get(f.port, '/readyz')).status).toBe(503);
      await new Promise((r) => setTimeout(r, 3_000));
      expect(await leaderGauge(f)).toBe('0');
      expect(await holder().catch(() => undefined)).toBeUndefined(); // not even campaigning
      await putFamilies('maintenance: { concurrency: 2 }');
      await waitFor('replica-f leading with the valid config', async () => (await leaderGauge(f)) === '1', 30_000, 100);
      expect((await get(f.port, '/readyz')).status).toBe(200);
      f.stop.abort();
      expect(await f.exit).toBe(0);
    });
  });

  it('started without a families ConfigMap, keeps the defaults (and stays ready) when a refused one appears', async () => {
    const g = await start('replica-g');
    await waitFor('replica-g ready', async () => (await get(g.port, '/readyz').catch(() => ({ status: 0 }))).status === 200, 30_000, 100);
    await putFamilies('email: { concurrency: lots }');
    await thenRemoveFamilies(async () => {
      // The defaults it started with are a configuration to keep, and its Warning says so.
      const notes = async () => (await kubectlJson<{ items: { note?: string }[] }>(['-n', ns, 'get', 'events.events.k8s.io', '--field-selector', 'reason=InvalidFamiliesConfig'])).items.map((e) => e.note ?? '');
      await waitFor('the refusal reported', async () => (await notes()).some((n) => n.includes('the previous configuration stays in force')), 30_000, 200);
      expect((await get(g.port, '/readyz')).status).toBe(200);
      g.stop.abort();
      expect(await g.exit).toBe(0);
    });
  });

  it('reports whether the served CRD is the one it was built with, and sees a re-applied CRD without a restart', async () => {
    const crdState = async (r: Replica) => [...(await get(r.port, '/metrics')).body.matchAll(/^bgtask_crd_schema_state\{state="(\w+)"\} 1$/gm)].map((m) => m[1]);
    const d = await start('replica-d', { crdCheckSeconds: '1' });
    await waitFor('replica-d checked the CRD', async () => (await crdState(d).catch(() => [])).length > 0, 30_000, 100);
    expect(await crdState(d)).toEqual(['current']);

    // What `helm upgrade` leaves behind: a CRD from another build (here: its hash edited).
    const lines: string[] = [];
    const e = await start('replica-e', { crdCheckSeconds: '1', logTo: lines });
    try {
      await kubectl(['annotate', '--overwrite', 'crd', CRD_NAME, `${SCHEMA_HASH_ANNOTATION}=0123456789abcdef`]);
      await waitFor('the edited CRD seen as outdated', async () => (await crdState(d)).join() === 'outdated', 30_000, 200);
      await waitFor('replica-e says so', async () => lines.some((l) => l.includes('not the one this operator was built with')), 30_000, 200);
      const warning = JSON.parse(lines.find((l) => l.includes('not the one this operator was built with'))!);
      expect(warning).toMatchObject({ level: 40, crd: CRD_NAME, served: '0123456789abcdef', expected: crdSchemaHash() });
      expect(warning.msg).toContain('`helm upgrade` does with crds.upgradeJob.enabled');
    } finally {
      await installCrd(); // the generated CRD again, its annotation with it
    }
    await waitFor('the re-applied CRD seen as current', async () => (await crdState(d)).join() === 'current', 30_000, 200);
    // Logged once per change of state, not once per check.
    expect(lines.filter((l) => l.includes('not the one this operator was built with'))).toHaveLength(1);
    for (const r of [d, e]) r.stop.abort();
    expect(await Promise.all([d.exit, e.exit])).toEqual([0, 0]);
  });
});
