/**
 * One run: config → registry → params → services → task.run(ctx) → outcome → report →
 * exit code. Every path, invalid input included, ends in one result that is reported the
 * same way (termination message, status patch, last log line).
 */
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import type { Redis } from 'ioredis';
import type { RunOutcome } from '../crds/constants.ts';
import type { LastRun } from '../crds/schema.ts';
import { parseConfig, parsePartialConfig, requireServices, requireSettings, type RunnerConfig } from './config.ts';
import { RunAborted, describeError } from './errors.ts';
import { exitCodeFor, outcomeForError } from './exit-codes.ts';
import { bootLogLevel, createLogger } from './logger.ts';
import { parseParams } from './params.ts';
import { loadRegistry } from './registry.ts';
import { startReport, type Reporter } from './report.ts';
import { runIdentity, type RunIdentity } from './run-identity.ts';
import { Summary } from './summary.ts';
import type { AnyTask, Clock, TaskContext } from './task.ts';

export interface RunRequest {
  taskName: string;
  /** `--params` as given: JSON text. */
  params?: string | undefined;
  dryRun: boolean;
}

const MAX_MESSAGE = 1024;
const systemClock: Clock = { now: () => new Date() };

interface Services {
  db?: Pool;
  redis?: Redis;
}

export async function runOnce(request: RunRequest, env: NodeJS.ProcessEnv = process.env, clock: Clock = systemClock): Promise<number> {
  const startTime = clock.now();
  const controller = new AbortController();
  const summary = new Summary();
  // Until the configuration is validated, the identity comes from whatever of it parses.
  let identity: RunIdentity = runIdentity(parsePartialConfig(env, ['BGTASK_RUN_ID', 'BGTASK_TRIGGER', 'BGTASK_ATTEMPT']) ?? defaultIdentity);
  const root = createLogger(bootLogLevel(env));
  let log = root.child({ task: request.taskName, runId: identity.id });
  // Listening from the start to the end: a SIGTERM while reporting must not kill the report.
  const stopSignals = listenForStopSignals(controller, () => log);
  const strays = strayErrors(() => log);
  let config: RunnerConfig | undefined;
  let task: AnyTask | undefined;
  let reporter: Reporter | undefined;
  const services: Services = {};
  let outcome: RunOutcome;
  let message: string;
  let error: string | null = null;

  try {
    config = parseConfig(env);
    identity = runIdentity(config);
    root.level = config.LOG_LEVEL;
    log = root.child({ task: request.taskName, runId: identity.id });
    reporter = startReport(config);
    const registry = await loadRegistry(config, { forRunOnly: true });
    task = registry.require(request.taskName);
    log = log.child({ family: task.family });
    const params = parseParams(task, request.params);
    requireServices(config, task.needs, `task ${task.name}`);
    log.info({ trigger: identity.trigger, attempt: identity.attempt, dryRun: request.dryRun, params }, 'run started');

    const softTimeoutSeconds = config.BGTASK_SOFT_TIMEOUT_SECONDS ?? task.defaults.softTimeoutSeconds;
    const softTimer = setTimeout(
      () => controller.abort(new RunAborted('TimedOut', `soft timeout of ${softTimeoutSeconds}s reached`)),
      softTimeoutSeconds * 1000,
    );
    softTimer.unref();

    await openServices(task, config, services, log);
    const ctx = taskContext({ task, params, config, env, identity, services, summary, clock, signal: controller.signal, dryRun: request.dryRun, log });
    const returned = await Promise.race([
      task.run(ctx),
      stuckAfterAbort(controller.signal, config.BGTASK_ABORT_GRACE_SECONDS * 1000),
      strays.failure,
    ]);
    clearTimeout(softTimer);
    outcome = 'Succeeded';
    message = typeof returned === 'string' && returned ? returned : 'succeeded';
  } catch (err) {
    outcome = outcomeForError(err, controller.signal);
    if (outcome === 'Interrupted' || outcome === 'TimedOut') {
      const reason = controller.signal.reason as RunAborted;
      const stuck = err instanceof Error && err.cause === reason;
      message = stuck ? `${reason.message}: ${err.message}` : `${reason.message}: stopped at a safe point`;
      log.warn({ err }, message);
    } else {
      message = error = describeError(err);
      log.error({ err }, `run ${outcome === 'InvalidInput' ? 'rejected' : 'failed'}: ${error}`);
    }
  }

  let lastRun = buildLastRun(identity, startTime, clock.now(), outcome, summary, message);
  if (task?.needs.postgres && services.db && !request.dryRun) {
    try {
      const { recordRun } = await import('./task-runs.ts');
      await recordRun(services.db, task, lastRun, error);
    } catch (err) {
      log.error({ err }, `could not record the run in task_runs: ${describeError(err)}`);
      if (outcome === 'Succeeded') {
        // The record is part of a run's contract: without it the run counts as failed (and is retried).
        outcome = 'Failed';
        lastRun = { ...lastRun, outcome, message: `the task succeeded but recording the run failed: ${describeError(err)}` };
      }
    }
  }
  await closeServices(services, log);
  await (reporter ?? startReport(parsePartialConfig(env, REPORT_SETTINGS))).deliver(lastRun, log);
  log.info({ result: lastRun }, 'run finished');
  stopSignals();
  strays.stop();
  return exitCodeFor(outcome);
}

const defaultIdentity = { BGTASK_TRIGGER: 'Manual', BGTASK_ATTEMPT: 1 } as const;

/** What reporting needs: with these valid, a run whose other settings are invalid still reports. */
const REPORT_SETTINGS = [
  'BGTASK_NAME',
  'BGTASK_NAMESPACE',
  'BGTASK_TERMINATION_LOG',
  'BGTASK_KUBE_API',
  'BGTASK_KUBE_TOKEN_FILE',
  'BGTASK_KUBE_CA_FILE',
  'KUBERNETES_SERVICE_HOST',
  'KUBERNETES_SERVICE_PORT',
] as const satisfies readonly (keyof RunnerConfig)[];

function buildLastRun(identity: RunIdentity, start: Date, end: Date, outcome: RunOutcome, summary: Summary, message: string): LastRun {
  return {
    runId: identity.id,
    trigger: identity.trigger,
    attempt: identity.attempt,
    startTime: start.toISOString(),
    completionTime: end.toISOString(),
    durationSeconds: Math.max(0, Math.round((end.getTime() - start.getTime()) / 10) / 100),
    outcome,
    summary: summary.toJSON(),
    // status.lastRun.message holds at most 1024 characters; the log keeps the whole error.
    message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 12)} [truncated]` : message,
  };
}

/** SIGTERM (the kubelet stopping the pod) and SIGINT abort the run's signal; the task stops at its next safe point. */
function listenForStopSignals(controller: AbortController, log: () => Logger): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    log().warn({ signal }, `received ${signal}: stopping at the next safe point`);
    controller.abort(new RunAborted('Interrupted', `received ${signal}`));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}

/**
 * An error thrown outside the task's promise (a callback, a promise nobody awaits) would crash
 * the process with no result reported: it fails the run instead.
 */
function strayErrors(log: () => Logger): { failure: Promise<never>; stop(): void } {
  let fail: (err: unknown) => void = () => undefined;
  const failure = new Promise<never>((_, reject) => (fail = reject));
  failure.catch(() => undefined); // observed by the race in runOnce; after the run, nothing awaits it
  const onError = (err: unknown) => {
    // Logged here too: once the task has ended, failing the race changes nothing.
    log().error({ err }, `uncaught error: ${describeError(err)}`);
    fail(new Error('the task failed outside its run() promise', { cause: err }));
  };
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  return {
    failure,
    stop() {
      process.off('uncaughtException', onError);
      process.off('unhandledRejection', onError);
    },
  };
}

/**
 * Rejects when the task has not returned `graceMs` after an abort: the runner then reports
 * and exits without it, so the result is out before the kubelet's SIGKILL. An open
 * transaction is rolled back by Postgres when the connection drops.
 */
function stuckAfterAbort(signal: AbortSignal, graceMs: number): Promise<never> {
  return new Promise((_, reject) => {
    const arm = () => {
      setTimeout(() => reject(new Error(`the task did not stop within ${graceMs / 1000}s of the abort`, { cause: signal.reason })), graceMs).unref();
    };
    if (signal.aborted) arm();
    else signal.addEventListener('abort', arm, { once: true });
  });
}

async function openServices(task: AnyTask, config: RunnerConfig, services: Services, log: Logger): Promise<void> {
  const connectTimeoutMs = config.BGTASK_CONNECT_TIMEOUT_SECONDS * 1000;
  if (task.needs.postgres && config.DATABASE_URL) {
    const { openPostgres } = await import('./services/postgres.ts');
    services.db = await openPostgres(config.DATABASE_URL, { connectTimeoutMs, applicationName: `bgtask ${task.name}`, log });
  }
  if (task.needs.redis && config.REDIS_URL) {
    const { connectRedis } = await import('./services/redis.ts');
    services.redis = await connectRedis(config.REDIS_URL, { connectTimeoutMs, log });
  }
}

async function closeServices(services: Services, log: Logger): Promise<void> {
  const closing: Promise<unknown>[] = [];
  if (services.db) closing.push(services.db.end());
  if (services.redis) closing.push(services.redis.quit());
  // A task stuck past its abort grace may still hold a connection: don't wait on it for long.
  const limit = new Promise((resolve) => setTimeout(resolve, 2000).unref());
  const settled = await Promise.race([Promise.allSettled(closing), limit.then(() => undefined)]);
  if (settled === undefined) log.warn('connections did not close within 2s; exiting anyway');
  else for (const r of settled) if (r.status === 'rejected') log.warn({ err: r.reason }, 'closing a connection failed');
}

/**
 * How long a pod has to stop once its Job's deadline or a deletion stops it: Kubernetes' default
 * terminationGracePeriodSeconds, which the operator's pods keep; then the kubelet kills it.
 */
const POD_STOP_GRACE_SECONDS = 30;

function taskContext(args: {
  task: AnyTask;
  params: unknown;
  config: RunnerConfig;
  env: NodeJS.ProcessEnv;
  identity: RunIdentity;
  services: Services;
  summary: Summary;
  clock: Clock;
  signal: AbortSignal;
  dryRun: boolean;
  log: Logger;
}): TaskContext<unknown> {
  const { task, services, summary } = args;
  return {
    log: args.log,
    params: args.params,
    get db(): Pool {
      if (!services.db) throw new Error(`task ${task.name} uses ctx.db but does not declare needs.postgres`);
      return services.db;
    },
    get redis(): Redis {
      if (!services.redis) throw new Error(`task ${task.name} uses ctx.redis but does not declare needs.redis`);
      return services.redis;
    },
    clock: args.clock,
    signal: args.signal,
    dryRun: args.dryRun,
    lifetimeSeconds: (args.config.BGTASK_TIMEOUT_SECONDS ?? task.defaults.timeoutSeconds) + POD_STOP_GRACE_SECONDS,
    env: args.config,
    requireSettings: (keys) => requireSettings(args.config, keys, task.name),
    variable: (name) => args.env[name] || undefined,
    run: args.identity,
    count: (name, n) => summary.count(name, n),
    set: (name, value) => summary.set(name, value),
  };
}
