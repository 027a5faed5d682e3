// The operator's process, top to bottom: clients → the control loop (caches, work queue and
// reconciler: control-loop.ts) → controller workers, gated by leader election; the families
// ConfigMap watch, the served CRD's check (crd-check.ts), health and metrics endpoints beside
// them; and the orderly shutdown. The reconcile logic itself lives in controller/reconcile.ts.
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { loadRegistry } from '../task-runner/registry.ts';
import { FamiliesConfigHolder, type ConfigMapLike } from './config/families.ts';
import type { V1EnvFromSource, V1EnvVar, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { RunnerSettings } from './controller/deps.ts';
import type { OperatorSettings } from './cli.ts';
import { crdSchemaHash } from '../crds/definition.ts';
import { createControlLoop } from './control-loop.ts';
import { watchCrd } from './crd-check.ts';
import { startEndpoints, type Check, type RunningServer } from './health.ts';
import { loadKubeConfig } from './kube/clients.ts';
import { RawApi } from './kube/raw-api.ts';
import { Controller } from './kube/controller.ts';
import { KubeEventRecorder, apiEventSink } from './kube/events.ts';
import { Informer, type InformerHandle } from './kube/informer.ts';
import { LeaderElector, defaultIdentity } from './kube/leader-election.ts';
import { CONFIG_MAPS, writableWhenFenced } from './kube/resources.ts';
import { createMetrics } from './metrics.ts';

export interface RunContext {
  log: Logger;
  /** Aborted by SIGTERM/SIGINT: shut down gracefully. */
  signal: AbortSignal;
  env: NodeJS.ProcessEnv;
}

/** A silent informer this many stall windows long means its recovery is failing: /healthz says so. */
const LIVENESS_STALL_FACTOR = 3;
/**
 * After a lost lease, in-flight reconciles get this long, not the full shutdown timeout: the next
 * leader may start leaseDuration − renewDeadline (5 s by default) after we noticed.
 */
const LOST_LEASE_DRAIN_MS = 2_000;

/** Runs until ctx.signal aborts (exit code 0) or leadership is lost (exit code 1). */
export async function runOperator(settings: OperatorSettings, ctx: RunContext): Promise<number> {
  const { log, signal } = ctx;
  const { kubeConfig, source } = loadKubeConfig({ kubeconfig: settings.kubeconfig });
  const metrics = createMetrics();
  const clients = { raw: new RawApi(kubeConfig, { observe: (method, code) => metrics.apiRequest(method, code), unfenced: writableWhenFenced }) };
  const podName = settings.podName ?? hostname();
  const ownNamespace = settings.podNamespace ?? kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace ?? 'default';
  log.info(
    { server: kubeConfig.getCurrentCluster()?.server, kubeconfig: source, namespace: settings.namespace ?? '(all)', ownNamespace, pod: podName },
    'starting',
  );

  const registry = await loadRegistry({ TASK_PLUGINS: settings.taskPlugins });
  const events = new KubeEventRecorder({ sink: apiEventSink(clients.raw), log: log.child({ component: 'events' }), instance: podName });
  const families = new FamiliesConfigHolder({ log: log.child({ component: 'families' }), events });

  const stallTimeoutMs = settings.watchStallSeconds * 1000;
  const loop = createControlLoop({
    raw: clients.raw,
    log,
    namespace: settings.namespace,
    stallTimeoutMs,
    registry,
    events,
    families,
    metrics,
    runner: runnerSettings(settings),
  });
  const { tasks, cronJobs, jobs, pods, queue, reconcile } = loop;
  // The family ConfigMap only itself, in the operator's own namespace.
  const familyConfigMaps = new Informer<ConfigMapLike>({
    raw: clients.raw,
    log,
    stallTimeoutMs,
    name: 'families-configmap',
    resource: CONFIG_MAPS,
    namespace: ownNamespace,
    fieldSelector: `metadata.name=${settings.familiesConfigmap}`,
  });
  const onFamiliesConfig = (cm: ConfigMapLike | undefined): void => void loop.applyFamilies(cm);
  familyConfigMaps.addEventHandler({ onAdd: onFamiliesConfig, onUpdate: (_old, cm) => onFamiliesConfig(cm), onDelete: () => onFamiliesConfig(undefined) });
  const informers: InformerHandle[] = [...loop.informers, familyConfigMaps];

  const controller = new Controller({ queue, reconcile, workers: settings.workers, log: log.child({ component: 'controller' }), observer: metrics });

  const stallLimitMs = LIVENESS_STALL_FACTOR * settings.watchStallSeconds * 1000;
  const liveness: Check[] = informers.map((inf) => ({
    name: `informer ${inf.name}`,
    check: () => {
      const silence = inf.silenceMs();
      return silence > stallLimitMs ? `no list, event or bookmark for ${Math.round(silence / 1000)} s` : undefined;
    },
  }));
  const readiness: Check[] = [
    ...informers.map((inf) => ({ name: `cache ${inf.name}`, check: () => (inf.hasSynced() ? undefined : 'not synced yet') })),
    { name: 'families config', check: () => families.unusable() },
  ];
  const servers = await startServers(settings, liveness, readiness, metrics.registry);

  // Leadership lost, or a signal: either way, the one way out is below.
  const stop = new AbortController();
  let lost: string | undefined;
  signal.addEventListener('abort', () => stop.abort(signal.reason), { once: true });
  if (signal.aborted) stop.abort(signal.reason);

  for (const inf of informers) inf.start();
  const crdCheck =
    settings.crdCheckSeconds > 0
      ? watchCrd({
          raw: clients.raw,
          log: log.child({ component: 'crd-check' }),
          expected: crdSchemaHash(),
          intervalMs: settings.crdCheckSeconds * 1000,
          onState: (result) => metrics.setCrdState(result.state),
          signal: stop.signal,
        })
      : Promise.resolve();
  let elector: LeaderElector | undefined;
  try {
    await Promise.all(informers.map((inf) => inf.waitForSync(stop.signal)));
    log.info({ tasks: tasks.store.size, cronJobs: cronJobs.store.size, jobs: jobs.store.size, pods: pods.store.size }, 'caches synced');
    // No ConfigMap at all: the defaults are the configuration, a good one to keep.
    if (!familyConfigMaps.store.get(ownNamespace, settings.familiesConfigmap)) loop.applyFamilies(undefined);
    // A refused ConfigMap at start leaves no last good config to keep: neither lead nor reconcile
    // (the defaults would undo every family's settings) until a valid one arrives.
    const waiting = families.unusable();
    if (waiting) {
      log.error({ configMap: settings.familiesConfigmap }, `${waiting}: waiting for a valid one before leading`);
      await families.usable(stop.signal);
      log.info({ configMap: settings.familiesConfigmap }, 'families config valid: going on');
    }
    if (settings.leaderElect) {
      elector = new LeaderElector({
        raw: clients.raw,
        log: log.child({ component: 'leader-election' }),
        namespace: settings.leaseNamespace ?? ownNamespace,
        name: settings.leaseName,
        identity: defaultIdentity(podName),
        onStartedLeading: () => {
          metrics.setLeader(true);
          controller.start();
        },
        onStoppedLeading: (reason) => {
          metrics.setLeader(false);
          lost = reason;
          // Another operator may lead already: nothing still running here writes a task, a CronJob or a Job.
          clients.raw.fenceWrites(new Error(`leadership lost: ${reason}`));
          stop.abort(new Error(`leadership lost: ${reason}`));
        },
      });
      void elector.start();
    } else {
      metrics.setLeader(true);
      controller.start();
    }
    await new Promise<void>((resolve) => {
      if (stop.signal.aborted) return resolve();
      stop.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } catch (err) {
    if (!stop.signal.aborted) throw err;
    // Stopped while waiting for the caches: nothing was reconciled yet.
  } finally {
    if (!stop.signal.aborted) stop.abort(new Error('shutting down')); // ends the CRD check loop too
    const timeoutMs = lost ? Math.min(LOST_LEASE_DRAIN_MS, settings.shutdownTimeoutSeconds * 1000) : settings.shutdownTimeoutSeconds * 1000;
    await shutDown({ log, controller, elector, lost, events, informers, servers, raw: clients.raw, timeoutMs, crdCheck });
  }
  return lost ? 1 : 0;
}

/**
 * How every run's pod is made, from the settings: the runner's plugin list (so runs know the
 * tasks the operator knows; a TASK_PLUGINS in --runner-env wins) and the --runner-* settings.
 */
export function runnerSettings(settings: OperatorSettings): RunnerSettings {
  // zod checked the core/v1 shapes (config/runner-pod.ts); the client's types are wider.
  const given = (settings.runnerEnv ?? []) as V1EnvVar[];
  const plugins = settings.taskPlugins && !given.some((e) => e.name === 'TASK_PLUGINS') ? [{ name: 'TASK_PLUGINS', value: settings.taskPlugins }] : [];
  const env = [...plugins, ...given];
  return {
    runnerImage: settings.runnerImage,
    runnerServiceAccount: settings.runnerServiceAccount,
    ...(settings.runnerImagePullPolicy ? { imagePullPolicy: settings.runnerImagePullPolicy } : {}),
    ...(env.length > 0 ? { env } : {}),
    ...(settings.runnerEnvFrom?.length ? { envFrom: settings.runnerEnvFrom as V1EnvFromSource[] } : {}),
    ...(settings.runnerVolumes?.length ? { volumes: settings.runnerVolumes as V1Volume[] } : {}),
    ...(settings.runnerVolumeMounts?.length ? { volumeMounts: settings.runnerVolumeMounts as V1VolumeMount[] } : {}),
  };
}

async function startServers(settings: OperatorSettings, liveness: Check[], readiness: Check[], registry: ReturnType<typeof createMetrics>['registry']): Promise<RunningServer[]> {
  const { healthAddr: h, metricsAddr: m } = settings;
  if (h.port === m.port && h.host === m.host) return [await startEndpoints({ ...h, liveness, readiness, registry })];
  return Promise.all([startEndpoints({ ...h, liveness, readiness }), startEndpoints({ ...m, registry })]);
}

interface ShutdownParts {
  log: Logger;
  controller: Controller;
  elector: LeaderElector | undefined;
  lost: string | undefined;
  events: KubeEventRecorder;
  informers: InformerHandle[];
  servers: RunningServer[];
  raw: RawApi;
  timeoutMs: number;
  /** The CRD check loop, which ends when the stop signal aborts. */
  crdCheck: Promise<void>;
}

/** Stop intake, let in-flight reconciles finish (bounded), hand the lease over, then close everything. */
async function shutDown(p: ShutdownParts): Promise<void> {
  const started = Date.now();
  const drained = await p.controller.stop(p.timeoutMs);
  if (!drained) {
    p.log.warn({ timeoutMs: p.timeoutMs }, 'in-flight reconciles did not finish in time: their writes are stopped before the lease is handed over');
    p.raw.fenceWrites(new Error('shutdown: reconciles still running when the lease is handed over'));
  }
  await withTimeout(p.events.flush(), 5_000, () => p.log.warn('pending events not written'));
  // A lost lease is not ours to release; a graceful stop hands it over at once.
  if (p.elector && !p.lost) await p.elector.release();
  await Promise.all([...p.informers.map((inf) => inf.stop()), p.crdCheck]);
  await Promise.all(p.servers.map((s) => s.close()));
  await p.raw.close();
  p.log.info({ ms: Date.now() - started, drained, ...(p.lost ? { leadershipLost: p.lost } : {}) }, 'stopped');
}

async function withTimeout(work: Promise<void>, ms: number, onTimeout: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    if ((await Promise.race([work, timedOut])) === 'timeout') onTimeout();
  } finally {
    clearTimeout(timer);
  }
}
