// The chart's runner-report policy (charts/bgtask-operator/templates/runner-report-policy.yaml),
// rendered by helm for one namespace and applied: runs in the integration tier report under the
// same admission rule as those of the installed product.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { kubectl, kubectlJson, waitFor } from './kube.ts';
import { ROOT, ensureHelm, kubernetesVersion } from './platform.ts';

const TEMPLATE = 'templates/runner-report-policy.yaml';

/** The policy's and its binding's name for runs of `namespace` (both are cluster-scoped). */
function rendered(namespace: string, serviceAccount: string): { yaml: string; name: string } {
  const args = ['template', 'it', join(ROOT, 'charts/bgtask-operator'), '-n', namespace, '--kube-version', kubernetesVersion(), '--show-only', TEMPLATE];
  const r = spawnSync(ensureHelm(), [...args, '--set-string', `runner.serviceAccount.name=${serviceAccount}`], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`helm template --show-only ${TEMPLATE} failed: ${r.stderr.trim()}`);
  const names = new Set(parseAllDocuments(r.stdout).map((d) => (d.toJS() as { metadata: { name: string } }).metadata.name));
  if (names.size !== 1) throw new Error(`expected the policy and its binding under one name, got ${[...names].join(', ')}`);
  return { yaml: r.stdout, name: [...names][0]! };
}

/** Applies the policy for runs of `namespace` as `serviceAccount`, and waits until it is type-checked. */
export async function applyReportPolicy(namespace: string, serviceAccount: string): Promise<string> {
  const { yaml, name } = rendered(namespace, serviceAccount);
  await kubectl(['apply', '-f', '-'], { input: yaml });
  const policy = await waitFor(`ValidatingAdmissionPolicy ${name} type-checked`, async () => {
    const p = await kubectlJson<{ metadata: { generation: number }; status?: { observedGeneration?: number; typeChecking?: { expressionWarnings?: unknown[] } } }>(['get', 'validatingadmissionpolicy', name, '-o', 'json']);
    return p.status?.observedGeneration === p.metadata.generation ? p : undefined;
  }, 30_000, 250);
  // A warning is an expression that does not type-check against the CRD's schema: a broken rule.
  const warnings = policy.status?.typeChecking?.expressionWarnings ?? [];
  if (warnings.length > 0) throw new Error(`the chart's ${TEMPLATE} does not type-check: ${JSON.stringify(warnings)}`);
  return name;
}

export async function deleteReportPolicy(namespace: string, serviceAccount: string): Promise<void> {
  const { name } = rendered(namespace, serviceAccount);
  await kubectl(['delete', 'validatingadmissionpolicybinding,validatingadmissionpolicy', name, '--ignore-not-found', '--wait=false']);
}
