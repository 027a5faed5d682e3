// The rendered chart is accepted by the real apiserver (schema, RBAC objects, hooks), with the
// defaults and with every optional feature — except the kinds of the Prometheus operator, whose
// CRDs this cluster does not have (their shape is checked in tests/unit/chart-template.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { createNamespace, deleteNamespace, kubectlRaw } from '../support/kube.ts';
import { CHART, helm } from '../support/e2e-helm.ts';
import { kubernetesVersion } from '../support/platform.ts';

const ABSENT_CRDS = new Set(['monitoring.coreos.com/v1']);

async function dryRun(ns: string, args: string[]): Promise<{ kinds: string[]; stdout: string; stderr: string; code: number }> {
  const rendered = await helm(['template', 'dry', CHART, '-n', ns, '--kube-version', kubernetesVersion(), ...args]);
  expect(rendered.code, rendered.stderr).toBe(0);
  const docs = parseAllDocuments(rendered.stdout).map((d) => d.toJS()).filter((m) => m && !ABSENT_CRDS.has(m.apiVersion));
  // Pod admission looks the ServiceAccount up, and a dry run creates none: create them for real.
  const accounts = docs.filter((m) => m.kind === 'ServiceAccount');
  expect((await kubectlRaw(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: accounts }) })).code).toBe(0);
  const r = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: docs }) });
  return { kinds: docs.map((m) => m.kind), ...r };
}

describe('helm template | kubectl apply --dry-run=server', () => {
  let ns: string;
  let other: string;
  beforeAll(async () => {
    ns = await createNamespace('e2e-dry');
    other = await createNamespace('e2e-dry-team');
  });
  afterAll(async () => {
    for (const n of [ns, other]) if (n) await deleteNamespace(n);
  });

  it('accepts the defaults', async () => {
    const r = await dryRun(ns, []);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/deployment.apps\/dry-bgtask-operator created \(server dry run\)/);
  });

  it('accepts every optional feature', async () => {
    const r = await dryRun(ns, ['-f', `${CHART}/ci/all-features-values.yaml`, '--set', `runner.serviceAccount.extraNamespaces={${other}}`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const kind of ['BackgroundTask', 'NetworkPolicy', 'PersistentVolumeClaim', 'Secret', 'Job']) expect(r.kinds).toContain(kind);
    expect(r.stdout).toMatch(/backgroundtask.workers.personal-assistant.io\/ai-test-scheduler-connection created \(server dry run\)/);
  });

  it('is refused by the apiserver where the chart would be wrong: the dry run is a real check', async () => {
    const rendered = await helm(['template', 'dry', CHART, '-n', ns, '--kube-version', kubernetesVersion(), '--set', 'defaultTasks.enabled=true']);
    expect(rendered.code, rendered.stderr).toBe(0);
    const broken = rendered.stdout.replace("schedule: '*/30 * * * *'", "schedule: '*/30 * * *'");
    expect(broken).not.toBe(rendered.stdout);
    const r = await kubectlRaw(['apply', '--dry-run=server', '-f', '-'], { input: broken });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/spec.schedule/);
  });
});
