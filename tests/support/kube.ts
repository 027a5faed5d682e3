// Small helpers for tests that talk to the real cluster through kubectl, the way a user would.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { API_GROUP, PLURAL } from '../../crds/constants.ts';
import { CRD_PATH } from '../../crds/crd-path.ts';

export interface KubectlResult { stdout: string; stderr: string; code: number }

/** Runs kubectl against the test cluster; never throws: callers assert on code/stdout/stderr. */
export function kubectlRaw(args: string[], opts: { input?: string; kubeconfig?: string; timeoutMs?: number } = {}): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      inject('kubectl'),
      args,
      { env: { ...process.env, KUBECONFIG: opts.kubeconfig ?? inject('kubeconfig') }, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => resolve({ stdout, stderr, code: err ? (typeof err.code === 'number' ? err.code : 1) : 0 }),
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Runs kubectl and throws (with its stderr) when it fails. */
export async function kubectl(args: string[], opts: { input?: string; kubeconfig?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await kubectlRaw(args, opts);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

export async function kubectlJson<T = any>(args: string[]): Promise<T> {
  return JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

/** A fresh namespace for one test file; delete it in afterAll (without waiting for it to go). */
export async function createNamespace(prefix: string): Promise<string> {
  const ns = uniqueName(prefix);
  await kubectl(['create', 'namespace', ns]);
  // Pods need the default ServiceAccount, which the controller creates a moment later.
  await waitFor(`ServiceAccount default in ${ns}`, async () => (await kubectlRaw(['-n', ns, 'get', 'sa', 'default'])).code === 0, 30_000);
  return ns;
}

export async function deleteNamespace(ns: string): Promise<void> {
  await kubectlRaw(['delete', 'namespace', ns, '--wait=false']);
}

/** Polls until check() returns a truthy value; on timeout throws with what it waited for. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | null | false>, timeoutMs: number, intervalMs = 1000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, lastError ? { cause: lastError } : undefined);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The terminated state of a pod's first container once it has ended. */
export async function waitForPodTermination(ns: string, pod: string, timeoutMs: number): Promise<{ exitCode: number; reason: string; message?: string }> {
  return waitFor(`pod ${ns}/${pod} to terminate`, async () => {
    const p = await kubectlJson<any>(['-n', ns, 'get', 'pod', pod]);
    return p.status?.containerStatuses?.[0]?.state?.terminated;
  }, timeoutMs);
}

/** Events of a namespace, oldest first, as one string (for failure messages). */
export async function describeEvents(ns: string): Promise<string> {
  return (await kubectlRaw(['-n', ns, 'get', 'events', '--sort-by=.lastTimestamp'])).stdout;
}

/** Server-side apply of the generated CRD (idempotent; many test files apply it), then waits until it is Established. */
export async function installCrd(): Promise<void> {
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', CRD_PATH]);
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/${PLURAL}.${API_GROUP}`]);
}
