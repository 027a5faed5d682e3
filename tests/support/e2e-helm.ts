// The chart as a user drives it in the e2e tier: helm install/upgrade/uninstall into a test's own
// namespace (the operator watching only that namespace, so tests and other tiers sharing the
// cluster never see each other's tasks), and reading BackgroundTasks back.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { FIXTURE_PLUGIN, FIXTURE_TAG } from './e2e-images.ts';
import { createNamespace, kubectl, kubectlJson, kubectlRaw, waitFor } from './kube.ts';
import { ROOT } from './platform.ts';

export const CHART = join(ROOT, 'charts/bgtask-operator');
export const RELEASE = 'bgtask';
/** The release's object names: fullname is the release name plus the chart name. */
export const FULLNAME = `${RELEASE}-bgtask-operator`;
const RUN_FINALIZER = 'workers.personal-assistant.io/run-accounting';

export function helm(args: string[], timeoutMs = 600_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(inject('helm'), args, { env: { ...process.env, KUBECONFIG: inject('kubeconfig') }, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ stdout, stderr, code: err ? (typeof err.code === 'number' ? err.code : 1) : 0 }),
    );
  });
}

async function helmOk(args: string[]): Promise<string> {
  const r = await helm(args);
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Values that every e2e install shares: the operator watches the release namespace only. */
export function baseValues(ns: string): Record<string, unknown> {
  return { operator: { watchNamespace: ns } };
}

/** Values that swap in the fixture images, whose runner and operator know the test plugin's tasks. */
export function fixtureValues(): Record<string, unknown> {
  return {
    operator: { image: { tag: FIXTURE_TAG } },
    runner: { image: { tag: FIXTURE_TAG }, taskPlugins: FIXTURE_PLUGIN },
  };
}

/** Deep merge of plain objects (later wins); arrays and scalars are replaced. */
export function mergeValues(...layers: Record<string, unknown>[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) {
      const prev = out[k];
      const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
      out[k] = isObj(prev) && isObj(v) ? mergeValues(prev, v) : v;
    }
  }
  return out;
}

/**
 * A namespace for a release, enforcing the restricted Pod Security Standard as a platform team
 * sets it on an application namespace: every pod of the release (operator, databases, hooks,
 * helm test) and every run must be admitted under it.
 */
export async function createReleaseNamespace(prefix: string): Promise<string> {
  const ns = await createNamespace(prefix);
  await kubectl(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted']);
  return ns;
}

/**
 * `helm upgrade --install --wait`: the values files in order, then `values` over them (written as
 * a file: JSON is YAML), with the operator watching only `ns`.
 */
export async function installChart(ns: string, values: Record<string, unknown>, files: string[] = []): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'bgtask-e2e-values-'));
  try {
    const file = join(dir, 'values.yaml');
    writeFileSync(file, JSON.stringify(mergeValues(baseValues(ns), values)));
    const args = [...files, file].flatMap((f) => ['-f', f]);
    return await helmOk(['upgrade', '--install', RELEASE, CHART, '-n', ns, ...args, '--wait', '--timeout', '5m']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function uninstallChart(ns: string): Promise<void> {
  await helmOk(['uninstall', RELEASE, '-n', ns, '--wait', '--timeout', '5m']);
}

/** Best-effort cleanup for afterAll: uninstall (so the hook releases the runs), then the namespace. */
export async function removeInstall(ns: string): Promise<void> {
  await helm(['uninstall', RELEASE, '-n', ns, '--wait', '--timeout', '3m']);
  await releaseRuns(ns);
  await kubectlRaw(['delete', 'namespace', ns, '--wait=false']);
}

/** Both operator replicas Ready and one of them holding the Lease; returns the leader's pod name. */
export async function waitForOperator(ns: string): Promise<string> {
  await kubectl(['-n', ns, 'rollout', 'status', `deployment/${FULLNAME}`, '--timeout=180s'], { timeoutMs: 200_000 });
  return waitFor('a leader', () => leaderPod(ns), 60_000);
}

export async function leaderPod(ns: string): Promise<string | undefined> {
  const r = await kubectlRaw(['-n', ns, 'get', 'lease', FULLNAME, '-o', 'jsonpath={.spec.holderIdentity}']);
  // The identity is <pod name>_<uuid> (operator/kube/leader-election.ts defaultIdentity).
  const pod = r.code === 0 ? r.stdout.split('_')[0] : '';
  return pod || undefined;
}

export interface TaskStatus {
  family?: string;
  nextScheduleTime?: string;
  lastSuccessfulTime?: string;
  active?: { name: string; queued?: boolean }[];
  lastRun?: { runId: string; trigger: string; attempt: number; startTime: string; completionTime?: string; outcome?: string; message?: string; summary?: Record<string, unknown> };
  succeeded?: number;
  failed?: number;
  consecutiveFailures?: number;
  conditions?: { type: string; status: string; reason: string; message: string }[];
}

export async function taskStatus(ns: string, name: string): Promise<TaskStatus> {
  return (await kubectlJson<{ status?: TaskStatus }>(['-n', ns, 'get', 'bgt', name])).status ?? {};
}

export async function applyTask(ns: string, name: string, spec: Record<string, unknown>): Promise<void> {
  const task = { apiVersion: 'workers.personal-assistant.io/v1alpha1', kind: 'BackgroundTask', metadata: { name, namespace: ns }, spec };
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify(task) });
}

export async function runNow(ns: string, name: string, token: string): Promise<void> {
  await kubectl(['-n', ns, 'annotate', '--overwrite', 'bgt', name, `workers.personal-assistant.io/run-now=${token}`]);
}

/**
 * Waits until the task's last run has an outcome and has left status.active, and `match` (which
 * names the counters expected once the operator has counted the run) accepts the status.
 */
export async function waitForOutcome(ns: string, name: string, timeoutMs: number, match: (s: TaskStatus) => boolean = () => true): Promise<TaskStatus> {
  return waitFor(`a counted outcome of ${ns}/${name}`, async () => {
    const s = await taskStatus(ns, name);
    const run = s.lastRun;
    return run?.outcome && !s.active?.some((a) => a.name === run.runId) && match(s) ? s : undefined;
  }, timeoutMs);
}

/**
 * For a test that counts a task's runs: returns the task's status once no scheduled run can land
 * in the next minute (waiting out one due sooner until it has been counted) and none is active.
 */
export async function clearOfSchedule(ns: string, name: string): Promise<TaskStatus> {
  const next = Date.parse((await taskStatus(ns, name)).nextScheduleTime ?? '');
  if (next - Date.now() < 60_000) {
    await waitForOutcome(ns, name, 180_000, (s) => s.lastRun?.trigger === 'Schedule' && Date.parse(s.lastRun.startTime) >= next - 1_000);
  }
  return waitFor(`no run of ${ns}/${name} active`, async () => {
    const s = await taskStatus(ns, name);
    return s.active?.length ? undefined : s;
  }, 180_000);
}

/** `kubectl get bgt` (or `-o wide`) as a user sees it: one row per task, columns by header name. */
export async function getBgtTable(ns: string, opts: { wide?: boolean } = {}): Promise<Record<string, string>[]> {
  const out = await kubectl(['-n', ns, 'get', 'bgt', ...(opts.wide ? ['-o', 'wide'] : [])]);
  const [header, ...rows] = out.trimEnd().split('\n');
  if (!header) return [];
  // Columns start where a header word starts after 2+ spaces; cells are cut at those offsets.
  const starts = [0, ...[...header.matchAll(/ {2,}(\S)/g)].map((m) => (m.index ?? 0) + m[0].length - 1)];
  const names = starts.map((s, i) => header.slice(s, starts[i + 1]).trim());
  return rows.map((row) => Object.fromEntries(names.map((n, i) => [n, row.slice(starts[i], starts[i + 1]).trim()])));
}

/**
 * Lifts the operator's run-accounting finalizer from every Job of the namespace: after the
 * operator is gone (uninstalled), the Jobs of tasks left behind would otherwise hold the
 * namespace's deletion forever.
 */
export async function releaseRuns(ns: string): Promise<void> {
  const jobs = await kubectlJson<{ items: { metadata: { name: string; finalizers?: string[] } }[] }>(['-n', ns, 'get', 'jobs']);
  for (const job of jobs.items.filter((j) => j.metadata.finalizers?.includes(RUN_FINALIZER))) {
    await kubectlRaw(['-n', ns, 'patch', 'job', job.metadata.name, '--type=json', '-p', JSON.stringify([{ op: 'remove', path: '/metadata/finalizers' }])]);
  }
}

/** psql in the bundled Postgres; returns the unaligned, tuples-only output. */
export async function psql(ns: string, sql: string): Promise<string> {
  const script = 'PGPASSWORD="$POSTGRES_PASSWORD" psql -v ON_ERROR_STOP=1 -h /tmp -U postgres -d "$POSTGRES_DB" -tAq -f -';
  return (await kubectl(['-n', ns, 'exec', '-i', `deploy/${FULLNAME}-postgresql`, '--', 'sh', '-c', script], { input: sql })).trim();
}
