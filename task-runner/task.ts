/**
 * The task contract. A task module holds its metadata beside its `run()`, and this file
 * imports nothing at run time, so the operator can import the registry for metadata
 * (name, family, defaults, params schema) without pulling any client library: a task
 * loads what it needs inside `run()`, or is handed it through `ctx`.
 */
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import type { Redis } from 'ioredis';
import type * as z from 'zod';
import type { BACKOFF_KINDS, Family } from '../crds/constants.ts';
import type { RunnerConfig, WithSettings } from './config.ts';
import type { RunIdentity } from './run-identity.ts';

export type SummaryValue = number | string | boolean;

export interface RetryDefaults {
  /** Retries after the first attempt fails (0 = never retried). */
  maxRetries: number;
  /** Delay before the first retry; with exponential backoff it doubles each retry. */
  delaySeconds: number;
  backoff: (typeof BACKOFF_KINDS)[number];
  /** Upper bound of an exponential delay. */
  maxDelaySeconds?: number;
}

export interface TaskDefaults {
  /** Standard 5-field cron expression, evaluated by the CronJob controller. */
  schedule: string;
  retry: RetryDefaults;
  /** Hard limit: the Job's activeDeadlineSeconds. */
  timeoutSeconds: number;
  /** The runner aborts `ctx.signal` here so the task stops at a safe point before the hard limit. */
  softTimeoutSeconds: number;
}

/** Services a task uses: each makes its URL required and its client available on `ctx`. */
export interface TaskNeeds {
  postgres?: boolean;
  redis?: boolean;
}

export interface Clock {
  now(): Date;
}

export interface TaskContext<P> {
  /** pino child logger bound to task, family and runId. */
  readonly log: Logger;
  readonly params: P;
  /** Postgres pool; reading it throws unless the task declares `needs.postgres`. */
  readonly db: Pool;
  /** Connected Redis client; reading it throws unless the task declares `needs.redis`. */
  readonly redis: Redis;
  readonly clock: Clock;
  /**
   * Aborted on SIGTERM/SIGINT or at the soft timeout. Check it between units of work
   * (`ctx.signal.throwIfAborted()`): the runner then reports Interrupted/TimedOut, exit 143.
   */
  readonly signal: AbortSignal;
  /** When true the task reports what it would do and changes nothing. */
  readonly dryRun: boolean;
  /**
   * The longest this run can be alive, in seconds from its start: its Job's deadline
   * (BGTASK_TIMEOUT_SECONDS, else the task's default timeout) plus the pod's time to stop. A claim
   * the run takes on shared rows can be taken over once it is this old: its run is surely dead.
   */
  readonly lifetimeSeconds: number;
  /**
   * The validated configuration (config.ts): the runner's variables and the tasks' settings,
   * typed. Settings the task cannot run without: `ctx.requireSettings([...])`.
   */
  readonly env: RunnerConfig;
  /**
   * The configuration with `keys` typed as set, or an InvalidInputError (exit 2) naming this task
   * and every one of them that is not set.
   */
  requireSettings<K extends keyof RunnerConfig>(keys: readonly K[]): WithSettings<K>;
  /**
   * A variable config.ts does not declare, from the run's environment (undefined when unset or
   * empty): a plugin task's own setting, or a secret whose name a row holds. Never log its value.
   */
  variable(name: string): string | undefined;
  readonly run: RunIdentity;
  /** Adds `n` (default 1) to a numeric counter of the run's summary. */
  count(name: string, n?: number): void;
  /** Sets a value in the run's summary. */
  set(name: string, value: SummaryValue): void;
}

export interface TaskDefinition<S extends z.ZodType = z.ZodType> {
  /** `<family>.<task>`, e.g. `maintenance.cleanup-old-sessions`. */
  readonly name: string;
  readonly family: Family;
  readonly description: string;
  /** zod schema of the task's params; its output is `ctx.params`. */
  readonly params: S;
  readonly defaults: TaskDefaults;
  readonly needs: TaskNeeds;
  /** Does the work. A returned string becomes the run's status message. */
  run(ctx: TaskContext<z.output<S>>): Promise<string | void>;
}

export type AnyTask = TaskDefinition<z.ZodType>;

/** Identity function that gives a task definition its types; the registry validates it. */
export function defineTask<S extends z.ZodType>(definition: TaskDefinition<S>): TaskDefinition<S> {
  return definition;
}
