// Renders and lints the Helm chart with the project's pinned helm (built into the cache on first
// use: the unit tier needs no cluster, only the binary).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT, ensureHelm, kubernetesVersion, promtoolPath, runScript } from '../support/platform.ts';

export const CHART = join(ROOT, 'charts/bgtask-operator');
export const ALL_FEATURES = join(CHART, 'ci/all-features-values.yaml');
export const DEMO = join(CHART, 'ci/demo-values.yaml');

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: any;
}

export { ensureHelm };

/** Prometheus' promtool, built into the cache on first use like helm. */
export function ensurePromtool(): string {
  const promtool = promtoolPath();
  if (!existsSync(promtool)) runScript('build-toolchain.sh', 'promtool');
  return promtool;
}

export function helm(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(ensureHelm(), args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** `helm template` with values files and --set pairs; throws with helm's stderr when it fails. */
export function render(opts: { files?: string[]; set?: Record<string, string | number | boolean>; namespace?: string } = {}): Manifest[] {
  const r = helm(templateArgs(opts));
  if (r.code !== 0) throw new Error(`helm template failed: ${r.stderr.trim()}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

export function templateArgs(opts: { files?: string[]; set?: Record<string, string | number | boolean>; namespace?: string }): string[] {
  // Offline, helm renders for Kubernetes 1.20 unless told: the chart's kubeVersion refuses that.
  const args = ['template', 'rel', CHART, '--namespace', opts.namespace ?? 'bgtask', '--kube-version', kubernetesVersion()];
  for (const f of opts.files ?? []) args.push('-f', f);
  for (const [k, v] of Object.entries(opts.set ?? {})) args.push(typeof v === 'string' ? '--set-string' : '--set', `${k}=${v}`);
  return args;
}

export function find(manifests: Manifest[], kind: string, name?: string): Manifest[] {
  return manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
}

export function one(manifests: Manifest[], kind: string, name?: string): Manifest {
  const found = find(manifests, kind, name);
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
}

/** Every pod spec in the manifests: Deployments', Jobs' and bare Pods'. */
export function podSpecs(manifests: Manifest[]): { owner: string; spec: any }[] {
  return manifests.flatMap((m) => {
    const spec = m.kind === 'Pod' ? m.spec : m.spec?.template?.spec;
    return spec ? [{ owner: `${m.kind}/${m.metadata.name}`, spec }] : [];
  });
}
