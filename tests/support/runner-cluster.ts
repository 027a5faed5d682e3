// The task-runner image as a pod would run it, without the operator: the CRD, in-cluster Postgres
// (and Redis) from hack/manifests/services.yaml, a restricted runner Job, a watch that keeps each
// pod's last state (a deleted pod's termination message included), psql inside the Postgres pod,
// redis-cli inside the Redis pod, and credentials for reaching the apiserver from the host as a
// ServiceAccount.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { API_GROUP, GROUP_VERSION, KIND, PLURAL } from '../../crds/constants.ts';
import { kubectl, kubectlJson, waitFor } from './kube.ts';
import { ROOT } from './platform.ts';

export const RUNNER_IMAGE = 'bgtask.local/task-runner:dev';
const SERVICES_FILE = join(ROOT, 'hack/manifests/services.yaml');
/** The Secret services.yaml creates, and the database its Postgres creates. */
export const SERVICES_SECRET = 'bgtask-services';
const DATABASE = 'bgtask';

/** The Secret, Deployment and Service of Postgres from services.yaml (Redis left out), ready to serve. */
export async function deployPostgres(ns: string): Promise<void> {
  await deployServices(ns, ['postgres']);
}

/** The Secret and the Deployment and Service of each of `services` from services.yaml, all ready to serve. */
export async function deployServices(ns: string, services: readonly ('postgres' | 'redis')[]): Promise<void> {
  const docs = parseAllDocuments(readFileSync(SERVICES_FILE, 'utf8')).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
  const wanted = docs.filter((d) => d.kind === 'Secret' || (services as readonly string[]).includes(d.metadata.name));
  if (wanted.length !== 1 + 2 * services.length) {
    throw new Error(`${SERVICES_FILE}: expected a Secret and a Deployment and Service of each of ${services.join(', ')}, found ${wanted.map((d) => `${d.kind}/${d.metadata.name}`).join(', ')}`);
  }
  await kubectl(['-n', ns, 'apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: wanted }) });
  await Promise.all(services.map((s) => kubectl(['-n', ns, 'rollout', 'status', `deployment/${s}`, '--timeout=180s'], { timeoutMs: 200_000 })));
  // A Ready pod is not yet a reachable Service: until kube-proxy has programmed the new endpoint,
  // the ClusterIP rejects connections (ECONNREFUSED). So each is probed the way clients reach
  // it, by Service name, from inside its own pod.
  await Promise.all(services.map((s) => waitFor(`${ns}/${s} answering through its Service`, () => kubectl(['-n', ns, 'exec', `deploy/${s}`, '--', 'sh', '-c', SERVICE_PROBES[s]]).then(() => true), 60_000, 500)));
}

/** A command run inside each service's pod that succeeds once the service answers through its Service name. */
const SERVICE_PROBES = {
  postgres: 'pg_isready -q -h postgres -p 5432 -U postgres -t 2',
  redis: 'redis-cli -h redis -p 6379 -a "$REDIS_PASSWORD" --no-auth-warning ping | grep -q PONG',
} as const;

/**
 * DATABASE_URL built from the services Secret's password by the kubelet ($(VAR) expansion), so
 * the password never appears in a manifest. `host`/`port` point it elsewhere (fault tests),
 * `database` at another database of the same server.
 */
export function databaseEnv(host = 'postgres', port = 5432, database = DATABASE): EnvVar[] {
  return [
    { name: 'POSTGRES_PASSWORD', valueFrom: { secretKeyRef: { name: SERVICES_SECRET, key: 'postgres-password' } } },
    { name: 'DATABASE_URL', value: `postgres://postgres:$(POSTGRES_PASSWORD)@${host}:${port}/${database}` },
  ];
}

/** REDIS_URL of the in-cluster Redis (deployServices), its password expanded by the kubelet as in databaseEnv. */
export function redisEnv(db = 0): EnvVar[] {
  return [
    { name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: SERVICES_SECRET, key: 'redis-password' } } },
    { name: 'REDIS_URL', value: `redis://:$(REDIS_PASSWORD)@redis:6379/${db}` },
  ];
}

/** Runs SQL with psql inside the Postgres pod (its own socket and password); returns the unaligned output. */
export async function psql(ns: string, sql: string, database = DATABASE): Promise<string> {
  const out = await kubectl(
    ['-n', ns, 'exec', '-i', 'deploy/postgres', '--', 'sh', '-c', `PGPASSWORD="$POSTGRES_PASSWORD" exec psql -h /tmp -U postgres -d ${database} -v ON_ERROR_STOP=1 -X -q -A -t`],
    { input: sql },
  );
  return out.trim();
}

/**
 * Runs Redis commands with redis-cli inside the Redis pod, one command a line, each argument
 * quoted (redis-cli reads "…" with \" and \\ escapes, as JSON writes them); returns one raw
 * reply a line.
 */
export async function redisCli(ns: string, commands: readonly (readonly (string | number)[])[]): Promise<string[]> {
  const input = commands.map((args) => args.map((a) => JSON.stringify(String(a))).join(' ')).join('\n');
  const out = await kubectl(['-n', ns, 'exec', '-i', 'deploy/redis', '--', 'sh', '-c', 'exec redis-cli -a "$REDIS_PASSWORD" --no-auth-warning'], { input: `${input}\n` });
  return out.replace(/\n$/, '').split('\n');
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: Record<string, unknown>;
}

/** A BackgroundTask that no operator here acts on: it only receives the runner's reports. */
export async function createBackgroundTask(ns: string, name: string, spec: Record<string, unknown>): Promise<void> {
  const manifest = { apiVersion: GROUP_VERSION, kind: KIND, metadata: { name, namespace: ns }, spec };
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
}

/** The BackgroundTask with its managedFields (kubectl hides them unless asked). */
export async function getBackgroundTask(ns: string, name: string): Promise<any> {
  return kubectlJson(['-n', ns, 'get', `${PLURAL}.${API_GROUP}`, name, '--show-managed-fields']);
}

/**
 * A ServiceAccount, plus a Role and RoleBinding when `rules` are given (none: an account with no
 * rights at all).
 */
export async function createServiceAccount(ns: string, name: string, rules?: Record<string, unknown>[]): Promise<void> {
  const items: Record<string, unknown>[] = [{ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } }];
  if (rules) {
    items.push(
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name, namespace: ns }, rules },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name, namespace: ns },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
      },
    );
  }
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }) });
}

export interface RunnerJobOptions {
  name: string;
  args: string[];
  serviceAccount?: string;
  /** The BackgroundTask to report to: sets the run identity the way the operator's Jobs do. */
  task?: string;
  env?: EnvVar[];
}

/**
 * A runner Job under the restricted Pod Security profile: non-root uid 10001, read-only root
 * filesystem with an emptyDir /tmp, no capabilities, RuntimeDefault seccomp; one attempt only.
 */
export function runnerJob(ns: string, opts: RunnerJobOptions): Record<string, unknown> {
  const identity: EnvVar[] = opts.task
    ? [
        { name: 'BGTASK_NAME', value: opts.task },
        { name: 'BGTASK_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
        // The Job's name is the run's id, as in the operator's runs.
        { name: 'BGTASK_RUN_ID', valueFrom: { fieldRef: { fieldPath: "metadata.labels['batch.kubernetes.io/job-name']" } } },
        { name: 'BGTASK_TRIGGER', value: 'Manual' },
        { name: 'BGTASK_ATTEMPT', value: '1' },
      ]
    : [];
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: opts.name, namespace: ns },
    spec: {
      backoffLimit: 0,
      template: {
        spec: {
          restartPolicy: 'Never',
          serviceAccountName: opts.serviceAccount ?? 'default',
          // Only a run that reports needs the token.
          automountServiceAccountToken: opts.task !== undefined,
          securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'runner',
              image: RUNNER_IMAGE,
              // Loaded into kind by hack/images.sh; never pulled.
              imagePullPolicy: 'Never',
              args: opts.args,
              env: [...identity, ...(opts.env ?? [])],
              resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: {} }],
        },
      },
    },
  };
}

export interface Terminated {
  exitCode: number;
  reason: string;
  message?: string;
}

export interface JobRun {
  /** The Job's only pod, once created. */
  podName(timeoutMs?: number): Promise<string>;
  /** Resolves when the pod's container has terminated (seen on a watch, so even if the pod is deleted right after). */
  terminated(timeoutMs?: number): Promise<Terminated>;
  stop(): void;
}

/**
 * Creates the Job with a watch on its pods already open: every state the pod passes through is
 * seen, including the terminated one of a pod deleted moments later. A pod stuck waiting (an
 * image that is not loaded, say) ends the wait with its reason instead of a bare timeout.
 */
export async function startJob(ns: string, job: Record<string, unknown>): Promise<JobRun> {
  const name = (job.metadata as { name: string }).name;
  const selector = encodeURIComponent(`batch.kubernetes.io/job-name=${name}`);
  const watch = spawn(inject('kubectl'), ['get', '--raw', `/api/v1/namespaces/${ns}/pods?watch=1&labelSelector=${selector}`], {
    env: { ...process.env, KUBECONFIG: inject('kubeconfig') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let latest: any;
  let watchError = '';
  const listeners = new Set<() => void>();
  let buffered = '';
  watch.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      const event = JSON.parse(line) as { type: string; object: any };
      if (event.type === 'ERROR') watchError = JSON.stringify(event.object);
      else latest = event.object;
      for (const notify of listeners) notify();
    }
  });
  watch.stderr.setEncoding('utf8').on('data', (chunk: string) => (watchError += chunk));
  const ended = new Promise<void>((resolve) => watch.once('close', () => resolve()));
  try {
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(job) });
  } catch (err) {
    watch.kill();
    throw err;
  }

  const until = <T>(what: string, pick: () => T | undefined, timeoutMs: number): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const value = pick();
        if (value !== undefined) return done(() => resolve(value));
        const waiting = latest?.status?.containerStatuses?.[0]?.state?.waiting;
        if (waiting && !['ContainerCreating', 'PodInitializing'].includes(waiting.reason)) {
          done(() => reject(new Error(`pod of Job ${ns}/${name} is stuck waiting: ${waiting.reason}: ${waiting.message ?? ''}`)));
        }
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} of Job ${ns}/${name}; last pod status: ${JSON.stringify(latest?.status ?? null)} ${watchError}`))),
        timeoutMs,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        listeners.delete(check);
        settle();
      };
      listeners.add(check);
      void ended.then(() => listeners.has(check) && done(() => reject(new Error(`the pod watch of Job ${ns}/${name} ended: ${watchError}`))));
      check();
    });

  return {
    podName: (timeoutMs = 120_000) => until('its pod', () => latest?.metadata?.name as string | undefined, timeoutMs),
    terminated: (timeoutMs = 180_000) => until('its pod to terminate', () => latest?.status?.containerStatuses?.[0]?.state?.terminated as Terminated | undefined, timeoutMs),
    stop: () => watch.kill(),
  };
}

/** Runs a Job to the end of its pod; returns the container's terminated state. */
export async function runJob(ns: string, job: Record<string, unknown>, timeoutMs?: number): Promise<Terminated & { podName: string }> {
  const run = await startJob(ns, job);
  try {
    const terminated = await run.terminated(timeoutMs);
    return { ...terminated, podName: await run.podName() };
  } finally {
    run.stop();
  }
}

export interface HostApiAccess {
  /** BGTASK_KUBE_API, BGTASK_KUBE_TOKEN_FILE, BGTASK_KUBE_CA_FILE for a runner on the host. */
  env: Record<string, string>;
  /** Deletes the token and CA files. */
  remove(): void;
}

/** The test cluster's apiserver as ServiceAccount `sa` of `ns` sees it: its URL, its CA, a fresh token, in files. */
export async function hostApiAccess(ns: string, sa: string): Promise<HostApiAccess> {
  const cluster = (field: string) => kubectl(['config', 'view', '--raw', '--minify', '-o', `jsonpath={.clusters[0].cluster.${field}}`]);
  const server = (await cluster('server')).trim();
  const ca = Buffer.from((await cluster('certificate-authority-data')).trim(), 'base64');
  if (!server.startsWith('https://') || ca.length === 0) throw new Error(`the kubeconfig gives no https server with an inline CA (server ${JSON.stringify(server)})`);
  const token = (await kubectl(['-n', ns, 'create', 'token', sa, '--duration=2h'])).trim();
  const dir = mkdtempSync(join(tmpdir(), 'bgtask-api-'));
  writeFileSync(join(dir, 'token'), token, { mode: 0o600 });
  writeFileSync(join(dir, 'ca.crt'), ca);
  return {
    env: { BGTASK_KUBE_API: server, BGTASK_KUBE_TOKEN_FILE: join(dir, 'token'), BGTASK_KUBE_CA_FILE: join(dir, 'ca.crt') },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
