import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lastRunSchema, type LastRun } from '../../crds/schema.ts';
import { kubeEndpoint } from '../../task-runner/kube-endpoint.ts';
import { TERMINATION_MESSAGE_LIMIT, planStatusPatch, statusPath, terminationLogPath, terminationMessage } from '../../task-runner/report.ts';

const run = (over: Partial<LastRun> = {}): LastRun => ({
  runId: 'cleanup-29123456',
  trigger: 'Schedule',
  attempt: 1,
  startTime: '2026-11-28T04:00:00.000Z',
  completionTime: '2026-11-28T04:00:02.500Z',
  durationSeconds: 2.5,
  outcome: 'Succeeded',
  summary: { sessions_cleaned: 5000, batches: 5 },
  message: 'deleted 5000 expired sessions in 5 batches',
  ...over,
});

describe('planStatusPatch', () => {
  it('sets status.lastRun, conditional on the resourceVersion read', () => {
    const plan = planStatusPatch({ metadata: { resourceVersion: '4711' } }, run());
    expect(plan).toEqual({ kind: 'patch', body: { metadata: { resourceVersion: '4711' }, status: { lastRun: run() } } });
  });

  it('produces a lastRun the API schema accepts', () => {
    const plan = planStatusPatch({ metadata: { resourceVersion: '1' } }, run());
    if (plan.kind !== 'patch') throw new Error('expected a patch');
    const body = plan.body as { status: { lastRun: unknown } };
    expect(lastRunSchema.safeParse(body.status.lastRun).success).toBe(true);
  });

  it('replaces an older run, nulling the keys the merge patch would otherwise keep', () => {
    const older = run({
      runId: 'cleanup-29123000',
      startTime: '2026-11-27T04:00:00.000Z',
      outcome: 'Failed',
      summary: { sessions_cleaned: 10, stale_counter: 1 },
    });
    const { durationSeconds: _dropped, ...newer } = run();
    const plan = planStatusPatch({ metadata: { resourceVersion: '9' }, status: { lastRun: older } }, newer as LastRun);
    expect(plan).toEqual({
      kind: 'patch',
      body: {
        metadata: { resourceVersion: '9' },
        status: { lastRun: { ...newer, durationSeconds: null, summary: { sessions_cleaned: 5000, batches: 5, stale_counter: null } } },
      },
    });
  });

  it('never overwrites a newer run', () => {
    const newer = run({ runId: 'cleanup-29124896', startTime: '2026-11-29T04:00:00.000Z' });
    expect(planStatusPatch({ metadata: { resourceVersion: '9' }, status: { lastRun: newer } }, run())).toEqual({
      kind: 'stale',
      reason: 'status.lastRun holds run cleanup-29124896 started 2026-11-29T04:00:00.000Z, newer than this run',
    });
  });

  it('leaves its own run alone once the operator has said it was cancelled (a pod orphaned by the deletion reporting late)', () => {
    const cancelled = run({ outcome: 'Cancelled', message: 'its Job was deleted before the run finished' });
    expect(planStatusPatch({ metadata: { resourceVersion: '4' }, status: { lastRun: cancelled } }, run({ outcome: 'Succeeded' }))).toEqual({
      kind: 'stale',
      reason: `run ${cancelled.runId} was cancelled (its Job deleted) before this report`,
    });
  });

  it('rewrites its own run (a report sent again)', () => {
    const same = run({ outcome: undefined, completionTime: undefined });
    expect(planStatusPatch({ metadata: { resourceVersion: '3' }, status: { lastRun: same } }, run()).kind).toBe('patch');
  });

  it('breaks a tie of start times by run id, the same way from both sides', () => {
    const a = run({ runId: 'run-a' });
    const b = run({ runId: 'run-b' });
    expect(planStatusPatch({ metadata: { resourceVersion: '1' }, status: { lastRun: b } }, a).kind).toBe('stale');
    expect(planStatusPatch({ metadata: { resourceVersion: '1' }, status: { lastRun: a } }, b).kind).toBe('patch');
  });

  it('refuses to patch without a resourceVersion (it would not be conditional)', () => {
    expect(() => planStatusPatch({ metadata: {} }, run())).toThrow(/no metadata.resourceVersion/);
  });
});

describe('statusPath', () => {
  it('addresses the status subresource of the BackgroundTask', () => {
    expect(statusPath('assistant', 'nightly-cleanup')).toBe(
      '/apis/workers.personal-assistant.io/v1alpha1/namespaces/assistant/backgroundtasks/nightly-cleanup/status',
    );
  });
});

describe('terminationMessage', () => {
  it('is the lastRun as one JSON line', () => {
    const line = terminationMessage(run());
    expect(line).not.toContain('\n');
    expect(JSON.parse(line)).toEqual(run());
  });

  it('fits the kubelet limit by shortening the message first', () => {
    const long = run({ message: 'x'.repeat(10_000) });
    const line = terminationMessage(long);
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(TERMINATION_MESSAGE_LIMIT);
    const parsed = JSON.parse(line) as LastRun;
    expect(parsed.summary).toEqual(run().summary);
    expect(parsed.message).toMatch(/^x+ \[truncated\]$/);
  });

  it('drops the summary when even that is not enough', () => {
    const summary = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`key_${i}`, 'v'.repeat(1000)]));
    const line = terminationMessage(run({ summary }));
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(TERMINATION_MESSAGE_LIMIT);
    expect(JSON.parse(line)).toMatchObject({ outcome: 'Succeeded', summary: {}, message: expect.stringContaining('[summary dropped: too large]') });
  });
});

describe('where the result goes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'runner-report-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the termination message where told, and never creates /dev/termination-log on a host', () => {
    expect(terminationLogPath({ BGTASK_TERMINATION_LOG: '/tmp/x' })).toBe('/tmp/x');
    expect(terminationLogPath({})).toBeUndefined();
  });

  it('contacts no API outside a cluster with no override', () => {
    expect(kubeEndpoint({}, join(dir, 'no-such-dir'))).toBeUndefined();
    // KUBERNETES_SERVICE_HOST alone (say, a laptop with a leftover variable) is not a cluster: no token.
    expect(kubeEndpoint({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: 443 }, join(dir, 'no-such-dir'))).toBeUndefined();
  });

  it('uses the service account in a cluster', () => {
    const sa = join(dir, 'sa');
    mkdirSync(sa);
    writeFileSync(join(sa, 'token'), 'token');
    writeFileSync(join(sa, 'ca.crt'), 'ca');
    const endpoint = kubeEndpoint({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: 6443 }, sa);
    expect(endpoint).toEqual({ server: new URL('https://[fd00::1]:6443'), tokenFile: join(sa, 'token'), caFile: join(sa, 'ca.crt'), namespaceFile: join(sa, 'namespace') });
  });

  it('lets BGTASK_KUBE_* point the runner at an API from outside the cluster', () => {
    const endpoint = kubeEndpoint({ BGTASK_KUBE_API: 'https://127.0.0.1:39211', BGTASK_KUBE_TOKEN_FILE: '/t/token', BGTASK_KUBE_CA_FILE: '/t/ca.crt' }, join(dir, 'none'));
    expect(endpoint).toMatchObject({ server: new URL('https://127.0.0.1:39211'), tokenFile: '/t/token', caFile: '/t/ca.crt' });
  });
});
