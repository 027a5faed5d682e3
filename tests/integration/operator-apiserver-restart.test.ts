// The apiserver goes away under a running operator: its static pod's container is stopped inside
// the kind node and the kubelet starts a new one. Every watch breaks; nobody restarts the operator.
// Once the apiserver answers again, a change to a BackgroundTask must reach its CronJob within
// 30 s — the informers recovered by themselves.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createNamespace, kubectl, kubectlJson, kubectlRaw, waitFor } from '../support/kube.ts';
import { kindNode, nodeShell } from '../support/cluster-host.ts';
import { prepareNamespace, startOperator, tearDown, type RunningOperator } from './operator-harness.ts';

let node: string;
let ns: string;
let operator: RunningOperator | undefined;

/** crictl inside the kind node. */
async function crictl(args: string): Promise<string> {
  return (await nodeShell(node, `crictl ${args}`)).trim();
}

const apiserverContainer = (): Promise<string> => crictl("ps --name '^kube-apiserver$' --state Running -q");
const apiserverReady = async (): Promise<boolean> => (await kubectlRaw(['get', '--raw', '/readyz'], { timeoutMs: 5_000 })).code === 0;

async function cronJobSchedule(name: string): Promise<string | undefined> {
  const r = await kubectlRaw(['-n', ns, 'get', 'cronjob', name, '-o', 'jsonpath={.spec.schedule}']);
  return r.code === 0 ? r.stdout : undefined;
}

beforeAll(async () => {
  node = await kindNode();
  ns = await createNamespace('op-apiserver');
  await prepareNamespace(ns);
  operator = await startOperator({ kubeconfig: inject('kubeconfig'), namespace: ns });
});

afterAll(async () => {
  await waitFor('the apiserver', apiserverReady, 180_000, 1_000);
  await tearDown(ns, operator);
});

describe('operator across an apiserver restart', () => {
  it('recovers its watches by itself and reconciles a change within 30 s of the apiserver coming back', async () => {
    const task = (schedule: string) =>
      JSON.stringify({
        apiVersion: 'workers.personal-assistant.io/v1alpha1',
        kind: 'BackgroundTask',
        metadata: { name: 'survivor', namespace: ns },
        spec: { task: 'maintenance.fixture-behave', schedule },
      });
    await kubectl(['apply', '-f', '-'], { input: task('0 3 * * *') });
    await waitFor('the first CronJob', async () => (await cronJobSchedule('survivor')) === '0 3 * * *', 60_000, 500);

    const statsBefore = operator!.informerStats();
    const before = await apiserverContainer();
    expect(before).toMatch(/^[0-9a-f]+$/);
    await crictl(`stop --timeout 0 ${before}`);
    await waitFor('the apiserver to go away', async () => !(await apiserverReady()), 60_000, 200);
    await waitFor('a new apiserver container', async () => {
      const now = await apiserverContainer().catch(() => '');
      return now !== '' && now !== before;
    }, 180_000, 1_000);
    await waitFor('the apiserver to answer again', apiserverReady, 180_000, 500);

    const back = Date.now();
    await kubectl(['apply', '-f', '-'], { input: task('15 4 * * *') });
    await waitFor('the CronJob to follow the change', async () => (await cronJobSchedule('survivor')) === '15 4 * * *', 30_000, 250);
    const seconds = (Date.now() - back) / 1000;
    console.log(`change reconciled ${seconds.toFixed(1)} s after the apiserver came back`);

    // And the status is true again: the status writes went through the recovered watches too.
    const status = await waitFor('Ready at the new generation', async () => {
      const t = await kubectlJson(['-n', ns, 'get', 'backgroundtask', 'survivor']);
      const ready = (t.status?.conditions ?? []).find((c: any) => c.type === 'Ready');
      return t.status?.observedGeneration === t.metadata.generation && ready?.status === 'True' ? t.status : undefined;
    }, 30_000, 500);
    expect(status.observedGeneration).toBe(2);
    // The restart really broke every watch, and each informer came back on its own.
    const statsAfter = operator!.informerStats();
    for (const [kind, after] of Object.entries(statsAfter)) {
      const broke = after.watchErrors + after.listErrors + after.lists - (statsBefore[kind]!.watchErrors + statsBefore[kind]!.listErrors + statsBefore[kind]!.lists);
      expect(broke, `${kind} informer noticed the restart`).toBeGreaterThan(0);
    }
  });
});
