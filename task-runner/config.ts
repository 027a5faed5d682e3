/**
 * The runner's environment, validated once at start: the runner's own variables and every
 * setting a built-in task reads (e-mail, Notion, LLM, file roots), declared here once and handed
 * to tasks typed, as `ctx.env`. Every variable is optional here; what a task needs is required
 * for that task only (`requireServices` for its `needs`, `ctx.requireSettings` inside its `run()`),
 * so a task that does not touch Redis runs without REDIS_URL. A malformed value of any of them
 * stops every run (exit 2, naming the variable, never echoing its value). A variable declared
 * nowhere here (a plugin's own, or a secret a row names) is read with `ctx.variable(name)`.
 * This module is loaded at every start: zod only, no client library.
 */
import * as z from 'zod';
import { DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN } from '../crds/constants.ts';
import { InvalidInputError } from './errors.ts';
import type { TaskNeeds } from './task.ts';

// Kubernetes object names (RFC 1123 subdomain) and namespaces (RFC 1123 label).
const dnsSubdomain = z
  .string()
  .max(253)
  .regex(new RegExp(DNS_SUBDOMAIN_PATTERN), 'must be a Kubernetes object name');
const dnsLabel = z
  .string()
  .max(63)
  .regex(new RegExp(DNS_LABEL_PATTERN), 'must be a Kubernetes namespace name');
const seconds = z.coerce.number().positive();
const absolutePath = z.string().startsWith('/', 'must be an absolute path');
/** A list of absolute paths separated by ':' (as PATH is), e.g. BGTASK_FILE_ROOTS=/data/tmp:/var/cache/app. */
const pathList = z
  .string()
  .transform((v) => v.split(':').map((s) => s.trim()).filter(Boolean))
  .pipe(z.array(z.string().startsWith('/', 'every path must be absolute')));

export const configSchema = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' }).optional(),
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).optional(),
  /** Extra task modules, comma-separated file paths or URLs. */
  TASK_PLUGINS: z
    .string()
    .optional()
    .transform((v) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean)),

  // Run identity, set by the operator through the downward API.
  BGTASK_NAME: dnsSubdomain.optional(),
  BGTASK_NAMESPACE: dnsLabel.optional(),
  BGTASK_RUN_ID: z.string().max(253).optional(),
  BGTASK_TRIGGER: z.enum(['Schedule', 'Manual', 'Retry']).default('Manual'),
  BGTASK_ATTEMPT: z.coerce.number().int().min(1).default(1),

  /** The Job's deadline (activeDeadlineSeconds: the BackgroundTask's timeoutSeconds, else the task's default), set by the operator. */
  BGTASK_TIMEOUT_SECONDS: seconds.optional(),
  /** Overrides the task's default soft timeout (the BackgroundTask's spec may set its own). */
  BGTASK_SOFT_TIMEOUT_SECONDS: seconds.optional(),
  /** After an abort, how long the task may take to reach a safe point before the runner reports and exits anyway. */
  BGTASK_ABORT_GRACE_SECONDS: seconds.default(20),
  /** Connect timeout for Postgres and Redis. */
  BGTASK_CONNECT_TIMEOUT_SECONDS: seconds.default(10),
  /** Where the result goes for the kubelet; written only when set or when the default file exists. */
  BGTASK_TERMINATION_LOG: z.string().optional(),
  BGTASK_MIGRATIONS_DIR: z.string().optional(),

  // Reporting to the Kubernetes API: in-cluster defaults, overridable for tests and benchmarks.
  BGTASK_KUBE_API: z.url({ protocol: /^https?$/, error: 'must be an https:// URL' }).optional(),
  BGTASK_KUBE_TOKEN_FILE: z.string().optional(),
  BGTASK_KUBE_CA_FILE: z.string().optional(),
  KUBERNETES_SERVICE_HOST: z.string().optional(),
  KUBERNETES_SERVICE_PORT: z.coerce.number().int().min(1).max(65535).optional(),

  // LLM: an OpenAI-compatible endpoint (ai.process-due-tasks requires it; ai.test-scheduler-connection checks it when set).
  LLM_BASE_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s):// URL' }).optional(),
  LLM_API_KEY: z.string().optional(),

  // E-mail (email.process-queue, email.send-daily-summary, email.send-notifications).
  /** smtp://[user:pass@]host[:port] (STARTTLS when offered) or smtps://… (TLS from the start); see services/smtp.ts. */
  SMTP_URL: z.url({ protocol: /^smtps?$/, error: 'must be an smtp:// or smtps:// URL' }).optional(),
  /** Default sender, e.g. `Assistant <assistant@example.com>`; a task's `from` param overrides it. */
  EMAIL_FROM: z.string().min(3, 'must be an address of 3 characters or more').optional(),

  // Notion (sync.notion-pages). The tokens are not here: notion_connections.token_variable names
  // the variable holding each one (NOTION_TOKEN by default), read with ctx.variable().
  /** The Notion API's base URL (a proxy, a test double); the client's own default when unset. */
  NOTION_BASE_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s):// URL' }).optional(),

  // Files (the file.* tasks and ai.cleanup-old-logs): every directory a task touches must be inside one of the roots.
  BGTASK_FILE_ROOTS: pathList.default([]),
  /** The roots file.cleanup-temp-files cleans when its params name none. */
  BGTASK_TEMP_ROOTS: pathList.optional(),
  /** Where file.backup-user-data writes its archives and file.restore-user-data reads them. */
  BGTASK_BACKUP_DIR: absolutePath.optional(),
  /** The users' files, archived by file.backup-user-data and restored by file.restore-user-data. */
  BGTASK_USER_DATA_ROOT: absolutePath.optional(),
  /** Rotated log files ai.cleanup-old-logs removes when its params name no logDir. */
  BGTASK_LOG_DIR: absolutePath.optional(),
});

export type RunnerConfig = z.output<typeof configSchema>;

/** The variables that are set: an empty one counts as unset. */
function setVariables(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''));
}

/** Parses the environment. Never echoes values (they may be secrets). */
export function parseConfig(env: NodeJS.ProcessEnv): RunnerConfig {
  const result = configSchema.safeParse(setVariables(env));
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`);
    throw new InvalidInputError(`invalid configuration: ${problems.join('; ')}`);
  }
  return result.data;
}

/**
 * Some of the configuration, or undefined if one of those variables is invalid: what the runner
 * can still use (its run identity, where to report) when the whole configuration is not.
 */
export function parsePartialConfig<K extends keyof RunnerConfig>(env: NodeJS.ProcessEnv, keys: readonly K[]): Pick<RunnerConfig, K> | undefined {
  const mask = Object.fromEntries(keys.map((k) => [k, true])) as { [k in keyof RunnerConfig]?: true };
  const result = configSchema.pick(mask).safeParse(setVariables(env));
  return result.success ? (result.data as unknown as Pick<RunnerConfig, K>) : undefined;
}

function notSet(who: string, missing: readonly string[]): InvalidInputError {
  return new InvalidInputError(`invalid configuration: ${who} requires ${missing.join(' and ')}, not set`);
}

/** The variables a task's needs make mandatory. */
export function requireServices(config: RunnerConfig, needs: TaskNeeds, who: string): void {
  const missing: string[] = [];
  if (needs.postgres && !config.DATABASE_URL) missing.push('DATABASE_URL (needs.postgres)');
  if (needs.redis && !config.REDIS_URL) missing.push('REDIS_URL (needs.redis)');
  if (missing.length > 0) throw notSet(who, missing);
}

export type WithSettings<K extends keyof RunnerConfig> = RunnerConfig & { [k in K]-?: NonNullable<RunnerConfig[k]> };

/**
 * The settings a task cannot run without, checked inside its run(): the configuration back with
 * those typed as set, or an InvalidInputError (exit 2) naming every one missing.
 */
export function requireSettings<K extends keyof RunnerConfig>(config: RunnerConfig, keys: readonly K[], who: string): WithSettings<K> {
  const missing = keys.filter((k) => config[k] === undefined);
  if (missing.length > 0) throw notSet(who, missing);
  return config as WithSettings<K>;
}
