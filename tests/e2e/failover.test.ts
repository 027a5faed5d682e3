// Killing the leader mid-way: the standby takes the Lease over, and every scheduled run is
// started, admitted and counted exactly once across the change of leader. (With the default
// concurrencyPolicy Forbid, a minute whose predecessor still waits for admission is skipped by the
// CronJob controller, so the minutes need not be consecutive.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubectl, kubectlJson, waitFor } from '../support/kube.ts';
import { applyTask, createReleaseNamespace, fixtureValues, installChart, leaderPod, removeInstall, taskStatus, waitForOperator } from '../support/e2e-helm.ts';

interface JobItem {
  metadata: { name: string; annotations?: Record<string, string>; ownerReferences?: { kind: string }[] };
  spec: { suspend?: boolean };
  status: { succeeded?: number; failed?: number; conditions?: { type: string; status: string }[] };
}

const isComplete = (j: JobItem) => j.status.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') ?? false;

describe('leader failover', () => {
  let ns: string;
  beforeAll(async () => {
    ns = await createReleaseNamespace('e2e-failover');
    await installChart(ns, fixtureValues());
  });
  afterAll(async () => {
    if (ns) await removeInstall(ns);
  });

  it('the other replica takes over when the leader is killed; no run is lost or doubled', async () => {
    const first = await waitForOperator(ns);
    // A run every minute that takes 20 s, keeps 10 finished Jobs and never retries.
    await applyTask(ns, 'tick', {
      task: 'maintenance.fixture-behave',
      schedule: '* * * * *',
      params: { sleepSeconds: 20 },
      history: { successfulRuns: 10, failedRuns: 10 },
      retry: { maxRetries: 0 },
    });
    const jobs = async () => (await kubectlJson<{ items: JobItem[] }>(['-n', ns, 'get', 'jobs', '-l', 'workers.personal-assistant.io/task-name=tick'])).items;
    // Mid-way: the first scheduled run has been admitted and is running.
    await waitFor('the first run admitted', async () => (await jobs()).some((j) => j.spec.suspend === false && !isComplete(j)), 90_000);
    const killedAt = Date.now();
    await kubectl(['-n', ns, 'delete', 'pod', first, '--grace-period=0', '--force'], { timeoutMs: 60_000 });

    const second = await waitFor('a new leader', async () => {
      const l = await leaderPod(ns);
      return l && l !== first ? l : undefined;
    }, 60_000);
    expect(second).not.toBe(first);

    // Two more scheduled runs under the new leader, and all of them counted.
    const done = await waitFor('three runs finished and counted', async () => {
      const [list, s] = await Promise.all([jobs(), taskStatus(ns, 'tick')]);
      return list.length >= 3 && list.every(isComplete) && s.succeeded === list.length ? { list, s } : undefined;
    }, 240_000, 2000);
    // All made by the CronJob (none started by an operator), scheduled before and after the kill,
    // each run once: one pod per Job (restartPolicy Never, no retries), each counted once (above).
    expect(done.list.every((j) => j.metadata.ownerReferences?.[0]?.kind === 'CronJob')).toBe(true);
    const scheduled = done.list.map((j) => Date.parse(j.metadata.annotations?.['batch.kubernetes.io/cronjob-scheduled-timestamp'] ?? '')).sort((a, b) => a - b);
    expect(scheduled.every((t) => Number.isFinite(t) && t % 60_000 === 0), JSON.stringify(scheduled)).toBe(true);
    expect(scheduled[0]!).toBeLessThan(killedAt);
    expect(scheduled.at(-1)!).toBeGreaterThan(killedAt);
    const pods = (await kubectlJson<{ items: { metadata: { labels?: Record<string, string> } }[] }>(['-n', ns, 'get', 'pods', '-l', 'workers.personal-assistant.io/task-name=tick'])).items;
    const podsPerJob = new Map<string, number>();
    for (const p of pods) podsPerJob.set(p.metadata.labels?.['job-name'] ?? '', (podsPerJob.get(p.metadata.labels?.['job-name'] ?? '') ?? 0) + 1);
    for (const j of done.list) expect(podsPerJob.get(j.metadata.name), j.metadata.name).toBe(1);
    expect(done.list.every((j) => j.status.succeeded === 1 && !j.status.failed)).toBe(true);
    expect(done.s.failed ?? 0).toBe(0);
  });
});
