import { afterEach, describe, expect, it } from 'vitest';
import { startEndpoints, type RunningServer } from '../../operator/health.ts';
import { createMetrics, type TaskSnapshot } from '../../operator/metrics.ts';

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function get(port: number, path: string): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

describe('health endpoints', () => {
  it('reports each failing check by name, with 500 for liveness and 503 for readiness', async () => {
    let synced = false;
    let stalled = true;
    const s = await startEndpoints({
      host: '127.0.0.1',
      port: 0,
      liveness: [{ name: 'informer pods', check: () => (stalled ? 'no event for 300 s' : undefined) }],
      readiness: [{ name: 'cache pods', check: () => (synced ? undefined : 'not synced yet') }],
    });
    servers.push(s);
    expect(await get(s.port, '/healthz')).toMatchObject({ status: 500, body: 'informer pods: no event for 300 s\n' });
    expect(await get(s.port, '/readyz')).toMatchObject({ status: 503, body: 'cache pods: not synced yet\n' });
    synced = true;
    stalled = false;
    expect(await get(s.port, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await get(s.port, '/readyz?verbose')).toMatchObject({ status: 200 });
    expect((await get(s.port, '/metrics')).status).toBe(404); // no registry given
    expect((await get(s.port, '/nope')).status).toBe(404);
  });
});

describe('metrics', () => {
  it('exposes reconcile, queue, run and leader metrics, and computes time since last success at scrape time', async () => {
    let now = Date.parse('2026-11-28T12:00:00Z');
    const metrics = createMetrics({ now: () => now, defaultMetrics: false });
    metrics.reconciled('success', 0.02);
    metrics.reconciled('error', 0.5);
    metrics.setQueueDepthSource(() => 7);
    metrics.observeRun({ task: 'email.digest', family: 'email', outcome: 'Succeeded', durationSeconds: 12 });
    metrics.setLeader(true);
    metrics.apiRequest('PATCH', 200);
    metrics.apiRequest('GET', 'error');
    const common = { consecutiveFailures: undefined, schedule: undefined };
    let tasks: TaskSnapshot[] = [
      { namespace: 'ns', name: 'digest', task: 'email.digest', family: 'email', lastSuccessfulTime: '2026-11-28T11:59:00Z', createdAt: '2026-11-01T00:00:00Z', ...common },
      { namespace: 'ns', name: 'never', task: 'ai.summary', family: 'ai', lastSuccessfulTime: undefined, createdAt: '2026-11-28T11:00:00Z', ...common },
    ];
    metrics.setTaskSource(() => tasks);
    const s = await startEndpoints({ host: '127.0.0.1', port: 0, registry: metrics.registry });
    servers.push(s);

    const scrape = await get(s.port, '/metrics');
    expect(scrape.status).toBe(200);
    expect(scrape.type).toMatch(/text\/plain/);
    expect(scrape.body).toContain('bgtask_reconcile_total{result="success"} 1');
    expect(scrape.body).toContain('bgtask_reconcile_total{result="error"} 1');
    expect(scrape.body).toContain('bgtask_reconcile_errors_total 1');
    expect(scrape.body).toContain('bgtask_reconcile_duration_seconds_count 2');
    expect(scrape.body).toContain('bgtask_workqueue_depth 7');
    expect(scrape.body).toContain('bgtask_runs_total{task="email.digest",family="email",outcome="Succeeded"} 1');
    expect(scrape.body).toContain('bgtask_run_duration_seconds_sum{task="email.digest",family="email",outcome="Succeeded"} 12');
    expect(scrape.body).toContain('bgtask_leader 1');
    expect(scrape.body).toContain('bgtask_api_requests_total{method="PATCH",code="200"} 1');
    expect(scrape.body).toContain('bgtask_api_requests_total{method="GET",code="error"} 1');
    expect(scrape.body).toContain('bgtask_seconds_since_last_success{namespace="ns",name="digest",task="email.digest"} 60');
    expect(scrape.body).not.toMatch(/^bgtask_seconds_since_last_success\{[^}]*name="never"/m);
    expect(scrape.body).toContain('bgtask_task_age_seconds{namespace="ns",name="never",task="ai.summary"} 3600');

    now += 60_000;
    tasks = []; // the task was deleted: its series goes with it
    const later = await get(s.port, '/metrics');
    expect(later.body).not.toContain('bgtask_seconds_since_last_success{');
  });
});
