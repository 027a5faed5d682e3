// The operator at scale, as a separate process (dist/operator.mjs, the bundle the image runs)
// against the kind cluster, measured from outside:
//   1. 1,000 CronJobs created directly, then 1,000 BackgroundTasks created through the operator,
//      both the way a user creates them (`kubectl apply -f` of one List): time until every
//      CronJob exists (and, for the operator, every status is Ready at its generation), as a
//      ratio. Target ≤ 1.5. Single runs on a 2-core VM move by ±20%, so this is done in rounds
//      (each side in a fresh namespace, deleted and gone before the next side starts, and started
//      on a quiet machine; the order of the sides turns round every round), each round's ratio
//      from its own side-by-side pair; the figure is the median round. The machine's CPU is
//      printed beside it: on two cores the path through the operator is CPU-bound, and its CPU
//      time ÷ cores is a floor no scheduling can beat. So is when kubectl's own apply returned:
//      the time after it is the operator trailing kubectl, the time before it kubectl slowed by
//      the work it causes. And so is this process's own CPU on each side (its watches), the
//      instrument's share.
//      Beside them, in the same rounds, the same 1,000 tasks through the reference controller
//      (tests/bench/reference-controller: the smallest controller written as Go operators are,
//      client-go informers and work queue, making exactly the operator's three writes per task
//      with its bodies and nothing else): the ratio a controller making those writes could reach
//      on this machine, and its CPU per task beside the operator's.
//      Both controllers authenticate as a ServiceAccount, by token, as the operator does when
//      deployed (service-account-kubeconfig.ts); kubectl, on every side, as the cluster's admin.
//   2. Five idle minutes at 1,000 tasks: writes seen by watches on every kind the operator
//      writes. Target 0.
//   3. The operator's resident memory at 1,000 and at 5,000 tasks (steady and peak), run with
//      the node flags and environment of its image (operator/Dockerfile). Target ≤ 150 MiB at
//      5,000. The 4,000 more are created 16 at a time, the hardest a client can push.
// The figures are printed and written to the bench report, not asserted as timings; what is
// asserted is that the runs really happened (every object there, every status Ready).
// BENCH_OPERATOR_TASKS, BENCH_OPERATOR_SCALE_TASKS, BENCH_OPERATOR_ROUNDS and BENCH_IDLE_SECONDS
// shrink it for a quick look; BENCH_OPERATOR_WORKERS sets --workers (default: the operator's own);
// BENCH_REFERENCE_PROTOBUF=1 has the reference controller speak protobuf to the apiserver;
// BENCH_OPERATOR_NODE_FLAGS (e.g. "--max-semi-space-size=8") replaces the image's node flags.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { HttpMethod, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { isNotFound } from '../../operator/kube/errors.ts';
import { RawApi } from '../../operator/kube/raw-api.ts';
import { BACKGROUND_TASKS, CONFIG_MAPS, CRON_JOBS, EVENTS, JOBS, LEASES, PODS, collectionPath, type ResourceType } from '../../operator/kube/resources.ts';
import { median, report } from '../support/bench-report.ts';
import { createNamespace, deleteNamespace, installCrd, kubectl, waitFor } from '../support/kube.ts';
import { cpuBetween, sampleMachineCpu, waitForQuietMachine, type CpuSample } from '../support/machine-cpu.ts';
import { freePort } from '../support/runner-net.ts';
import { ROOT } from '../support/platform.ts';
import { serviceAccountKubeconfig, type ServiceAccountKubeconfig } from '../support/service-account-kubeconfig.ts';
import { watchWrites } from '../support/watch-writes.ts';

const TASKS = Number(process.env.BENCH_OPERATOR_TASKS ?? 1_000);
const SCALE_TASKS = Number(process.env.BENCH_OPERATOR_SCALE_TASKS ?? 5_000);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 300);
const ROUNDS = Math.max(1, Number(process.env.BENCH_OPERATOR_ROUNDS ?? 5));
/** Requests in flight at once when creating the tasks of the scale phase. */
const CREATE_CONCURRENCY = 16;
const TASK_NAME = 'maintenance.cleanup-old-sessions';
// Never due during the benchmark: no run starts, so only the operator's own work is measured.
const SCHEDULE = '0 0 1 1 *';
/** The task whose CronJob and status are the direct side's and the reference controller's templates. */
const TEMPLATE_TASK = 'template';
/** Each side's namespaces start so; a run deletes what an earlier one left with these prefixes. */
const NAMESPACE_PREFIX = { operator: 'bench-operator', direct: 'bench-direct', reference: 'bench-reference', credentials: 'bench-credentials' } as const;
const MiB = 1024 * 1024;
/** Built by hack/bench.sh from tests/bench/reference-controller. */
const REFERENCE_CONTROLLER = process.env.BENCH_REFERENCE_CONTROLLER ?? `${ROOT}/.run/reference-controller`;

let raw: RawApi;
/** The kubeconfig both controllers run with: a ServiceAccount's token. */
let controllerCredentials: ServiceAccountKubeconfig | undefined;
let operator: ControllerProcess | undefined;
let reference: ControllerProcess | undefined;
/** Namespaces made by the benchmark and not yet deleted. */
const namespaces = new Set<string>();
/** The template CronJob and status the reference controller is given. */
const templateDir = mkdtempSync(`${tmpdir()}/bench-reference-`);

/** The operator's process, or the reference controller's. */
interface ControllerProcess {
  /** SIGTERM, and resolves when it has exited. */
  stop(): Promise<void>;
  /** Resolves with the exit code when the process exits. */
  exited: Promise<number | null>;
  /** VmRSS and VmHWM (peak) of the process, in bytes. */
  memory(): { rss: number; peak: number };
  /** CPU seconds the process has used (user + system). */
  cpuSeconds(): number;
  output(): string;
}

/** The node flags and environment the operator image runs with, read from its Dockerfile. */
function imageRuntime(): { flags: string[]; env: Record<string, string> } {
  const dockerfile = readFileSync(`${ROOT}/operator/Dockerfile`, 'utf8');
  const entrypoint = JSON.parse(/^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1] ?? 'null') as string[] | null;
  if (!entrypoint || entrypoint[0] !== 'node') throw new Error('operator/Dockerfile: no ENTRYPOINT ["node", …] found');
  // BENCH_OPERATOR_NODE_FLAGS replaces the image's flags, to measure another set side by side.
  const flags = process.env.BENCH_OPERATOR_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? entrypoint.slice(1, entrypoint.findIndex((a) => a.endsWith('.mjs')));
  const env = Object.fromEntries([...dockerfile.matchAll(/^ENV\s+([A-Z_]+)=(\S+)\s*$/gm)].map((m) => [m[1]!, m[2]!]));
  return { flags, env };
}

function startOperator(kubeconfig: string, namespace: string, port: number): ControllerProcess {
  const runtime = imageRuntime();
  return follow(spawn(
    process.execPath,
    [
      ...runtime.flags,
      'dist/operator.mjs', 'run', '--kubeconfig', kubeconfig, '--namespace', namespace,
      '--runner-image', 'bgtask.local/task-runner:dev',
      '--metrics-addr', `127.0.0.1:${port}`, '--health-addr', `127.0.0.1:${port}`, '--log-level', 'warn',
      ...(process.env.BENCH_OPERATOR_WORKERS ? ['--workers', process.env.BENCH_OPERATOR_WORKERS] : []),
    ],
    { cwd: ROOT, env: { PATH: process.env.PATH, POD_NAMESPACE: namespace, ...runtime.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  ));
}

/** The reference controller for `namespace`, making the writes of the operator's template task. */
function startReference(kubeconfig: string, namespace: string, port: number, templates: { cronJob: string; status: string }): ControllerProcess {
  if (!existsSync(REFERENCE_CONTROLLER)) throw new Error(`${REFERENCE_CONTROLLER} is missing: hack/bench.sh builds it`);
  const args = ['--kubeconfig', kubeconfig, '--namespace', namespace, '--template-name', TEMPLATE_TASK, '--cronjob', templates.cronJob, '--status', templates.status, '--addr', `127.0.0.1:${port}`, ...(process.env.BENCH_REFERENCE_PROTOBUF ? ['--protobuf'] : [])];
  return follow(spawn(REFERENCE_CONTROLLER, args, { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** A started controller process: its output, exit, memory and CPU. */
function follow(child: ChildProcess): ControllerProcess {
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    exited: exit,
    async stop() {
      child.kill('SIGTERM');
      await exit;
    },
    memory() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
      return { rss: kib('VmRSS'), peak: kib('VmHWM') };
    },
    cpuSeconds() {
      // /proc/PID/stat: fields 14 and 15 (utime, stime) in clock ticks, after the parenthesized name.
      const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
    output: () => out,
  };
}

/** Runs fn over items with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

const names = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `bench-${String(from + i).padStart(5, '0')}`);

/**
 * Follows CronJobs (and BackgroundTasks when asked) of a namespace through watches, and resolves
 * when `count` CronJobs exist and, with tasks, `count` tasks report Ready at their generation.
 */
function track(namespace: string, count: number, withTasks: boolean): { done: Promise<number>; stop(): void } {
  const abort = new AbortController();
  const cronJobs = new Set<string>();
  const ready = new Set<string>();
  let resolveDone!: (at: number) => void;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));
  const check = () => {
    if (cronJobs.size >= count && (!withTasks || ready.size >= count)) resolveDone(performance.now());
  };
  const follow = (kind: ResourceType, onObject: (type: string, o: any) => void) => followKind(namespace, kind, onObject, abort.signal);
  follow(CRON_JOBS, (type, o) => {
    if (type === 'ADDED' || type === 'MODIFIED') cronJobs.add(o.metadata.name);
    check();
  });
  if (withTasks) {
    follow(BACKGROUND_TASKS, (type, o) => {
      const isReady =
        o.status?.observedGeneration === o.metadata.generation &&
        (o.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');
      if ((type === 'ADDED' || type === 'MODIFIED') && isReady) ready.add(o.metadata.name);
      check();
    });
  }
  return { done, stop: () => abort.abort() };
}

/** Every object of a kind in the namespace, then each change, until `signal` aborts (watches restarted as they end). */
function followKind(namespace: string, kind: ResourceType, onObject: (type: string, o: any) => void, signal: AbortSignal): void {
  void (async () => {
    while (!signal.aborted) {
      // A watch from resourceVersion 0 starts with every existing object, then follows.
      await raw.watch<any>(collectionPath(kind, namespace), { resourceVersion: '0', allowWatchBookmarks: false }, (e) => onObject(e.type, e.object), signal).catch(() => undefined);
    }
  })();
}

/** Creates the objects with CREATE_CONCURRENCY requests in flight; returns when the last create returned. */
async function createAll(kind: ResourceType, namespace: string, bodies: unknown[]): Promise<void> {
  await pool(bodies, CREATE_CONCURRENCY, (body) => raw.request(HttpMethod.POST, collectionPath(kind, namespace), { body }));
}

const taskBody = (namespace: string, name: string) => ({
  apiVersion: 'workers.personal-assistant.io/v1alpha1',
  kind: 'BackgroundTask',
  metadata: { name, namespace },
  spec: { task: TASK_NAME, schedule: SCHEDULE },
});

/** `kubectl apply -f` of one List of objects: what a user does. */
async function kubectlApply(items: unknown[]): Promise<void> {
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }), timeoutMs: 1_200_000 });
}

/**
 * Creates BackgroundTasks (by kubectl, or `concurrent` requests) and times until every one is
 * Ready with its CronJob; also when the creating client returned, so the report can say how far
 * the operator trailed the client.
 */
async function createTasks(controller: ControllerProcess, namespace: string, list: string[], expectTotal: number, how: 'kubectl' | 'concurrent'): Promise<{ seconds: number; createdSeconds: number; eventsSeconds: number }> {
  const tracker = track(namespace, expectTotal, true);
  const start = performance.now();
  try {
    const bodies = list.map((n) => taskBody(namespace, n));
    if (how === 'kubectl') await kubectlApply(bodies);
    else await createAll(BACKGROUND_TASKS, namespace, bodies);
    const created = performance.now();
    const end = await Promise.race([
      tracker.done,
      controller.exited.then((code) => Promise.reject(new Error(`the controller exited (${code}) before every task was Ready; it said:\n${controller.output()}`))),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not every task Ready within 20 min; the controller said:\n${controller.output()}`)), 1_200_000)),
    ]);
    // The Events come after the statuses (events.ts holds them while the controller is busy):
    // when the last one was written is part of the figure, and no side ends before its Events.
    const eventsWritten = await cronJobCreatedEvents(namespace, expectTotal, controller);
    return { seconds: (end - start) / 1000, createdSeconds: (created - start) / 1000, eventsSeconds: (eventsWritten - start) / 1000 };
  } finally {
    tracker.stop();
  }
}

/**
 * Resolves with the time at which `count` tasks of the namespace have their CronJobCreated Event
 * (followed by a watch started only now, so it adds nothing to the measured window).
 */
async function cronJobCreatedEvents(namespace: string, count: number, controller: ControllerProcess): Promise<number> {
  const abort = new AbortController();
  const seen = new Set<string>();
  let resolveDone!: (at: number) => void;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));
  followKind(namespace, EVENTS, (type, o) => {
    if (type === 'ADDED' && o.reason === 'CronJobCreated') seen.add(o.regarding?.name);
    if (seen.size >= count) resolveDone(performance.now());
  }, abort.signal);
  try {
    return await Promise.race([done, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${seen.size} of ${count} CronJobCreated Events after 5 min; the controller said:\n${controller.output()}`)), 300_000))]);
  } finally {
    abort.abort();
  }
}

beforeAll(async () => {
  const kc = new KubeConfig();
  kc.loadFromFile(inject('kubeconfig'));
  raw = new RawApi(kc);
  await installCrd();
  await earlierRunsGone();
  controllerCredentials = await serviceAccountKubeconfig(raw, kc, {
    namespace: await newNamespace(NAMESPACE_PREFIX.credentials),
    name: 'controller',
    clusterRole: 'cluster-admin',
    binding: 'bgtask-bench-controller',
    seconds: 6 * 3600,
    path: `${templateDir}/controller.kubeconfig`,
  });
});

afterAll(async () => {
  await stopOperator();
  await stopReference();
  await controllerCredentials?.remove();
  // Not waited for: the garbage collector takes thousands of objects at its own pace.
  for (const ns of namespaces) await deleteNamespace(ns).catch(() => undefined);
  await raw?.close();
  rmSync(templateDir, { recursive: true, force: true });
});

async function stopOperator(): Promise<void> {
  await operator?.stop();
  operator = undefined;
}

async function stopReference(): Promise<void> {
  await reference?.stop();
  reference = undefined;
}

async function newNamespace(prefix: string): Promise<string> {
  const ns = await createNamespace(prefix);
  namespaces.add(ns);
  return ns;
}

/** Deletes the namespaces and waits until they are gone, so the next round does not share the cluster with their garbage collection. */
async function deleteNamespacesAndWait(list: string[]): Promise<void> {
  for (const ns of list) {
    await deleteNamespace(ns);
    namespaces.delete(ns);
  }
  const gone = (ns: string) => async () => raw.request(HttpMethod.GET, `/api/v1/namespaces/${ns}`).then(() => false, (err: unknown) => (isNotFound(err) ? true : Promise.reject(err)));
  for (const ns of list) await waitFor(`namespace ${ns} deleted`, gone(ns), 600_000);
}

/**
 * An earlier run's namespaces (deleted, not waited for, when it ended) gone before this one
 * measures anything: the garbage collector is still busy with their thousands of objects.
 */
async function earlierRunsGone(): Promise<void> {
  const list = await raw.request<any>(HttpMethod.GET, '/api/v1/namespaces');
  const ours = (name: string) => Object.values(NAMESPACE_PREFIX).some((prefix) => name.startsWith(`${prefix}-`));
  await deleteNamespacesAndWait(list.items.map((n: any) => n.metadata.name as string).filter(ours));
}

/** Each side of a round starts on a machine done with earlier work (see waitForQuietMachine). */
async function quietMachine(side: string, round: number): Promise<void> {
  const { busyCores, quiet } = await waitForQuietMachine();
  if (!quiet) console.warn(`round ${round}, ${side}: the machine never went quiet (${busyCores.toFixed(2)} cores busy); measuring anyway`);
}

/** An operator process for `namespace`, ready. */
async function operatorFor(namespace: string, port: number): Promise<ControllerProcess> {
  operator = startOperator(controllerCredentials!.path, namespace, port);
  await ready('the operator', port);
  return operator;
}

/** Resolves when the process at `port` answers /readyz. */
async function ready(what: string, port: number): Promise<void> {
  await waitFor(`${what} ready`, async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, 60_000, 200);
}

/** One round's CronJobs created directly, in a namespace of its own that is gone again before the next side starts. */
async function directSide(list: string[], cronJobBody: (namespace: string, name: string) => unknown, round: number): Promise<DirectRound> {
  const namespace = await newNamespace(NAMESPACE_PREFIX.direct);
  try {
    await quietMachine('direct', round);
    const tracker = track(namespace, list.length, false);
    try {
      return await withCpu(async () => {
        const start = performance.now();
        await kubectlApply(list.map((name) => cronJobBody(namespace, name)));
        return { seconds: ((await tracker.done) - start) / 1000 };
      });
    } finally {
      tracker.stop();
    }
  } finally {
    await deleteNamespacesAndWait([namespace]);
  }
}

/** One round's tasks through the running operator, in its namespace. */
async function operatorSide(namespace: string, list: string[], round: number): Promise<OperatorRound> {
  const running = operator!;
  await quietMachine('through the operator', round);
  const cpuBefore = running.cpuSeconds();
  const { seconds, createdSeconds, eventsSeconds, cpu, selfCpu } = await withCpu(() => createTasks(running, namespace, list, list.length, 'kubectl'));
  return { seconds, kubectlSeconds: createdSeconds, eventsSeconds, cpu, ownCpu: running.cpuSeconds() - cpuBefore, selfCpu };
}

/** Runs `measure`, adding the machine's CPU and this process's CPU (the watches that time it) meanwhile. */
async function withCpu<T>(measure: () => Promise<T>): Promise<T & { cpu: CpuSample; selfCpu: number }> {
  const machine = sampleMachineCpu();
  const self = process.cpuUsage();
  const result = await measure();
  return { ...result, cpu: cpuBetween(machine, sampleMachineCpu()), selfCpu: usageSeconds(process.cpuUsage(self)) };
}

/** One round's tasks through the reference controller, in a namespace of its own that is gone again before the next side starts. */
async function referenceSide(list: string[], templates: { cronJob: string; status: string }, port: number, round: number): Promise<ReferenceRound> {
  const namespace = await newNamespace(NAMESPACE_PREFIX.reference);
  const started = startReference(controllerCredentials!.path, namespace, port, templates);
  reference = started;
  try {
    await ready('the reference controller', port);
    await quietMachine('through the reference controller', round);
    const cpuBefore = started.cpuSeconds();
    const { seconds, eventsSeconds } = await createTasks(started, namespace, list, list.length, 'kubectl');
    return { seconds, eventsSeconds, ownCpu: started.cpuSeconds() - cpuBefore, rss: started.memory().rss };
  } finally {
    await stopReference();
    await deleteNamespacesAndWait([namespace]);
  }
}

describe('operator at scale', () => {
  // The ratio is a timing on a shared machine: printed beside its target and its baseline, not
  // asserted. The idle writes and the memory are counts, asserted once printed.
  it(`times ${TASKS} tasks against direct CronJob creation (target ≤ 1.5×, printed), idles without writes, and stays within 150 MiB at ${SCALE_TASKS}`, async () => {
    // The operator's own CronJob for one task is the template of the direct ones, so both sides
    // create the very same objects; it and the task's status are the reference controller's.
    const port = await freePort();
    const referencePort = await freePort();
    let managed = await newNamespace(NAMESPACE_PREFIX.operator);
    await operatorFor(managed, port);
    await raw.request(HttpMethod.POST, collectionPath(BACKGROUND_TASKS, managed), { body: taskBody(managed, TEMPLATE_TASK) });
    const template = await waitFor('the template CronJob', async () => raw.request<any>(HttpMethod.GET, `${collectionPath(CRON_JOBS, managed)}/${TEMPLATE_TASK}`).catch(() => undefined), 60_000, 200);
    const cronJobBody = (namespace: string, name: string) => ({
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name, namespace, labels: template.metadata.labels, annotations: template.metadata.annotations },
      spec: template.spec,
    });
    const templateStatus = await waitFor('the template task Ready', async () => {
      const task = await raw.request<any>(HttpMethod.GET, `${collectionPath(BACKGROUND_TASKS, managed)}/${TEMPLATE_TASK}`);
      return task.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') ? task.status : undefined;
    }, 60_000, 200);
    const templates = { cronJob: `${templateDir}/cronjob.json`, status: `${templateDir}/status.json` };
    writeFileSync(templates.cronJob, JSON.stringify(cronJobBody(managed, TEMPLATE_TASK)));
    writeFileSync(templates.status, JSON.stringify(templateStatus));
    await raw.request(HttpMethod.DELETE, `${collectionPath(BACKGROUND_TASKS, managed)}/${TEMPLATE_TASK}`);
    await waitFor('the template task gone', async () => (await raw.request<any>(HttpMethod.GET, collectionPath(CRON_JOBS, managed))).items.length === 0, 60_000, 200);

    // 1. Rounds of three sides: the CronJobs created directly, the tasks through the reference
    // controller, the tasks through the operator. Each side has a namespace of its own, deleted and
    // gone before the next side starts, so no side shares the cluster with another's objects. The
    // order turns round every round (direct first, then the operator first), so neither side always
    // follows the same history; the last round ends with the operator, whose tasks stay.
    const first = names(0, TASKS);
    const rounds: Round[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      if (round > 1) {
        managed = await newNamespace(NAMESPACE_PREFIX.operator);
        await operatorFor(managed, port);
      }
      const measured: { direct?: DirectRound; operator?: OperatorRound; reference?: ReferenceRound } = {};
      const sides = {
        direct: async () => {
          measured.direct = await directSide(first, cronJobBody, round);
        },
        reference: async () => {
          measured.reference = await referenceSide(first, templates, referencePort, round);
        },
        operator: async () => {
          measured.operator = await operatorSide(managed, first, round);
          if (round < ROUNDS) {
            await stopOperator();
            await deleteNamespacesAndWait([managed]);
          }
        },
      };
      const order = (ROUNDS - round) % 2 === 0 ? (['direct', 'reference', 'operator'] as const) : (['operator', 'reference', 'direct'] as const);
      for (const side of order) await sides[side]();
      const { direct, operator: viaOperator, reference: viaReference } = measured as Required<typeof measured>;
      rounds.push({ order: order.join(', '), direct, operator: viaOperator, reference: viaReference, ratio: viaOperator.seconds / direct.seconds });
    }
    const running = operator!;
    const at1000 = running.memory();

    // 2. Idle: every kind the operator writes (or could), watched from outside.
    await new Promise((r) => setTimeout(r, 10_000)); // Event series still pending are flushed (the Events themselves were waited for)
    const writes = await watchWrites(inject('kubeconfig'), managed, [BACKGROUND_TASKS, CRON_JOBS, JOBS, PODS, EVENTS, CONFIG_MAPS, LEASES]);
    const metricsBefore = await apiWrites(port);
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    const idleWrites = await writes.stop();
    const ownCount = (await apiWrites(port)) - metricsBefore;
    const idle = running.memory();

    // 3. Scale to SCALE_TASKS.
    const { seconds: scaleSeconds } = await createTasks(running, managed, names(TASKS, SCALE_TASKS), SCALE_TASKS, 'concurrent');
    const scalePeak = running.memory().peak;
    await new Promise((r) => setTimeout(r, 30_000)); // settle: caches full, queues empty
    const atScale = running.memory();

    const ratio = median(rounds.map((r) => r.ratio));
    const seconds = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(' / ');
    const times = (xs: number[]) => `${xs.map((x) => `${x.toFixed(2)}×`).join(' / ')}; median ${median(xs).toFixed(2)}×`;
    // The CPU floor: the shortest the operator path could take on this machine if its CPU time
    // were spread perfectly over every core, as a ratio to the direct time; and the same floor
    // were the operator process itself free. Only less CPU, not better scheduling, goes below it.
    const floor = (r: Round, cpu: number) => cpu / r.operator.cpu.cores / r.direct.seconds;
    report('operator at scale (operator as a separate process, kind cluster)', [
      [`${TASKS} CronJobs by kubectl apply, until every one exists (each round)`, `${seconds(rounds.map((r) => r.direct.seconds))} s`],
      [`${TASKS} BackgroundTasks by kubectl apply, until every CronJob exists and every task is Ready (each round)`, `${seconds(rounds.map((r) => r.operator.seconds))} s`],
      // Where the time goes: kubectl's one-at-a-time creates, slowed by the work they cause on the
      // same cores, or an operator falling behind them.
      ['of which kubectl\'s apply, until its last create returned (each round)', `${seconds(rounds.map((r) => r.operator.kubectlSeconds))} s`],
      ['and from there until every task was Ready (each round)', `${rounds.map((r) => (r.operator.seconds - r.operator.kubectlSeconds).toFixed(2)).join(' / ')} s`],
      // Events wait while the operator is busy (operator/kube/events.ts), so they land after the statuses.
      ['every task\'s CronJobCreated Event written, from the same start (each round)', `${seconds(rounds.map((r) => r.operator.eventsSeconds))} s`],
      ['order of the sides (each round)', rounds.map((r) => r.order).join(' / ')],
      ['ratio of each round', rounds.map((r) => `${r.ratio.toFixed(2)}×`).join(' / ')],
      [`ratio, median of ${ROUNDS} rounds (target ≤ 1.5)`, `${ratio.toFixed(2)}×`],
      ['operator CPU per task created (each round)', `${rounds.map((r) => ((r.operator.ownCpu * 1000) / TASKS).toFixed(1)).join(' / ')} ms`],
      [`machine CPU busy (all processes, ${rounds[0]!.operator.cpu.cores} cores), direct (each round)`, `${seconds(rounds.map((r) => r.direct.cpu.busy))} s, ${seconds(rounds.map((r) => r.direct.cpu.busy / r.direct.seconds))} cores on average`],
      ['machine CPU busy through the operator (each round)', `${seconds(rounds.map((r) => r.operator.cpu.busy))} s, ${seconds(rounds.map((r) => r.operator.cpu.busy / r.operator.seconds))} cores on average`],
      ['of which the operator process (each round)', `${seconds(rounds.map((r) => r.operator.ownCpu))} s`],
      ['of which this benchmark process (its watches, kubectl\'s input), direct / through the operator (each round)', rounds.map((r) => `${r.direct.selfCpu.toFixed(2)}/${r.operator.selfCpu.toFixed(2)}`).join(' / ') + ' s'],
      ['CPU stolen by the hypervisor, direct / through the operator (each round)', rounds.map((r) => `${r.direct.cpu.steal.toFixed(1)}/${r.operator.cpu.steal.toFixed(1)}`).join(' / ') + ' s'],
      ['CPU floor of the ratio: machine CPU through the operator ÷ cores ÷ direct time (each round)', times(rounds.map((r) => floor(r, r.operator.cpu.busy)))],
      ['the same floor without the operator process\'s own CPU (each round)', times(rounds.map((r) => floor(r, r.operator.cpu.busy - r.operator.ownCpu)))],
      // The reference controller: the same tasks, the same three writes, the same cluster.
      [`${TASKS} BackgroundTasks through the reference controller (client-go, the operator's writes and nothing else), until every task is Ready (each round)`, `${seconds(rounds.map((r) => r.reference.seconds))} s`],
      ['its CronJobCreated Events all written, from the same start (each round)', `${seconds(rounds.map((r) => r.reference.eventsSeconds))} s`],
      ['its ratio to the direct CronJobs (each round)', times(rounds.map((r) => r.reference.seconds / r.direct.seconds))],
      ['its CPU per task created, beside the operator\'s (each round)', `${rounds.map((r) => ((r.reference.ownCpu * 1000) / TASKS).toFixed(1)).join(' / ')} ms`],
      [`its RSS at ${TASKS} tasks (each round)`, `${rounds.map((r) => (r.reference.rss / MiB).toFixed(1)).join(' / ')} MiB`],
      // The operator beside the smallest controller making its writes: its own share of the gap.
      ['the operator\'s time ÷ the reference controller\'s (each round)', times(rounds.map((r) => r.operator.seconds / r.reference.seconds))],
      [`writes in ${IDLE_SECONDS} idle s at ${TASKS} tasks, seen by watches (target 0)`, idleWrites.length],
      ['writes in the same window by the operator\'s own count', ownCount],
      [`RSS at ${TASKS} tasks, just Ready / after the idle window`, `${(at1000.rss / MiB).toFixed(1)} / ${(idle.rss / MiB).toFixed(1)} MiB`],
      [`${SCALE_TASKS - TASKS} more tasks (${CREATE_CONCURRENCY} creates in flight) until all ${SCALE_TASKS} Ready`, `${scaleSeconds.toFixed(1)} s (${((SCALE_TASKS - TASKS) / scaleSeconds).toFixed(0)} tasks/s)`],
      [`RSS at ${SCALE_TASKS} tasks, steady (target ≤ 150 MiB)`, `${(atScale.rss / MiB).toFixed(1)} MiB`],
      [`RSS peak (VmHWM) reaching ${SCALE_TASKS}`, `${(scalePeak / MiB).toFixed(1)} MiB`],
    ]);
    if (idleWrites.length > 0) console.log(`writes while idle:\n  ${idleWrites.slice(0, 50).join('\n  ')}`);

    // The benchmark's facts (not its timings): everything it measured really happened.
    const list = await raw.request<any>(HttpMethod.GET, collectionPath(CRON_JOBS, managed));
    expect(list.items.length).toBe(SCALE_TASKS);
    expect(Number.isFinite(ratio)).toBe(true);
    expect(idleWrites, 'writes while idle').toEqual([]);
    expect(atScale.rss / MiB, `RSS at ${SCALE_TASKS} tasks, MiB`).toBeLessThanOrEqual(150);
  });
});

interface Round {
  /** The sides in the order they ran. */
  order: string;
  direct: DirectRound;
  operator: OperatorRound;
  reference: ReferenceRound;
  ratio: number;
}

/** The CronJobs of a round created directly. */
interface DirectRound {
  seconds: number;
  /** The machine's CPU meanwhile. */
  cpu: CpuSample;
  /** CPU seconds of this process (the watches that time it). */
  selfCpu: number;
}

/** The tasks of a round through the operator. */
interface OperatorRound {
  seconds: number;
  /** When kubectl's apply of the tasks returned, from the same start. */
  kubectlSeconds: number;
  /** When every task's CronJobCreated Event had been written, from the same start. */
  eventsSeconds: number;
  cpu: CpuSample;
  /** CPU seconds of the operator process. */
  ownCpu: number;
  selfCpu: number;
}

/** The same round's tasks through the reference controller. */
interface ReferenceRound {
  seconds: number;
  /** When every task's CronJobCreated Event had been written. */
  eventsSeconds: number;
  /** CPU seconds of the reference controller while the tasks were created. */
  ownCpu: number;
  rss: number;
}

const usageSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;

/** Write requests the operator counted itself (bgtask_api_requests_total, every verb but GET). */
async function apiWrites(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(/^bgtask_api_requests_total\{method="(\w+)",code="[^"]*"\} (\d+)/gm)) if (m[1] !== 'GET') sum += Number(m[2]);
  return sum;
}
