// Brings up (or reuses) what the cluster tiers need, through the project's own scripts, and
// reads back where things are. Used by the vitest globalSetup files.
import { execFileSync, spawnSync } from 'node:child_process';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';

export const ROOT = resolve(import.meta.dirname, '../..');

function versions(): Record<string, string> {
  const text = readFileSync(join(ROOT, 'hack/versions.env'), 'utf8');
  return Object.fromEntries(
    text.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split('=', 2) as [string, string]),
  );
}

/** The Kubernetes version the cluster runs: what `helm template` and `helm lint` render for offline. */
export function kubernetesVersion(): string {
  return versions().KUBERNETES_VERSION!;
}

export function cacheDir(): string {
  return process.env.BGTASK_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'bgtask-operator');
}

export function kubectlPath(): string {
  return join(cacheDir(), `kubernetes-${versions().KUBERNETES_VERSION}`, 'bin', 'kubectl');
}

export function helmPath(): string {
  return join(cacheDir(), `helm-${versions().HELM_VERSION}`, 'bin', 'helm');
}

/** The pinned helm, built into the cache on first use (no cluster needed). */
export function ensureHelm(): string {
  const helm = helmPath();
  if (!existsSync(helm)) runScript('build-toolchain.sh', 'helm');
  return helm;
}

export function promtoolPath(): string {
  return join(cacheDir(), `promtool-${versions().PROMETHEUS_VERSION}`, 'bin', 'promtool');
}

/** Runs a hack/ script with its output streamed to ours; throws with the exit code on failure. */
export function runScript(script: string, ...args: string[]): string {
  const r = spawnSync('bash', [join(ROOT, 'hack', script), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    env: { ...process.env, PATH: `${join(ROOT, '.tools/node/bin')}:${process.env.PATH}` },
  });
  if (r.status !== 0) throw new Error(`hack/${script} ${args.join(' ')} failed with exit ${r.status ?? r.signal}`);
  return r.stdout;
}

/** Creates or reuses the kind cluster; returns the kubeconfig path cluster-up printed. */
export function ensureCluster(): string {
  const out = runScript('cluster-up.sh');
  const m = /export KUBECONFIG=(\S+)/.exec(out);
  if (!m?.[1]) throw new Error(`hack/cluster-up.sh did not print the kubeconfig path; it printed: ${out}`);
  return m[1];
}

export function ensureImages(): void {
  runScript('images.sh');
}

export function gitShortHead(): string {
  return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
}
