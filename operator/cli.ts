/**
 * operator run [flags]: the BackgroundTask operator. Every flag can also come from the
 * environment (the Helm chart sets env); a flag wins over its variable. Returns the exit code:
 * 0 after a graceful shutdown, 1 when leadership was lost or the operator failed, 2 for bad flags.
 * operator crd print|apply: the BackgroundTask CRD this build was made with, as YAML, or made the
 * cluster's (the chart's pre-upgrade hook); 0 when done, 1 when it failed.
 */
import { Command, CommanderError } from 'commander';
import pino, { type DestinationStream, type Logger } from 'pino';
import * as z from 'zod';
import { customResourceDefinitionYaml } from '../crds/definition.ts';
import { DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN } from '../crds/constants.ts';
import { describeError as describeErrorChain } from '../task-runner/errors.ts';
import { runnerEnvFromSchema, runnerEnvSchema, runnerVolumeMountsSchema, runnerVolumesSchema } from './config/runner-pod.ts';
import { applyCrd } from './crd-apply.ts';
import { loadKubeConfig } from './kube/clients.ts';
import { RawApi } from './kube/raw-api.ts';
import { runOperator } from './main.ts';

const DNS_LABEL = new RegExp(DNS_LABEL_PATTERN);
const DNS_SUBDOMAIN = new RegExp(DNS_SUBDOMAIN_PATTERN);
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface ListenAddress {
  /** undefined: every interface. */
  host?: string;
  port: number;
}

/** `8080`, `:8080` or `host:port` (port 0 picks a free one). */
export function parseListenAddress(value: string): ListenAddress {
  const m = /^(?:(.*):)?(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65_535) throw new Error(`${JSON.stringify(value)} is not a port or host:port`);
  const host = m[1]?.replace(/^\[(.*)\]$/, '$1');
  return host ? { host, port } : { port };
}

const listenAddress = z.string().transform((v, ctx) => {
  try {
    return parseListenAddress(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);

const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;

export const settingsSchema = z
  .object({
    kubeconfig: z.string().min(1).optional(),
    namespace: z.string().max(63).regex(DNS_LABEL, 'must be a namespace name').optional(),
    leaderElect: bool.default(false),
    leaseName: z.string().max(253).regex(DNS_SUBDOMAIN, 'must be a Lease name').default('bgtask-operator'),
    leaseNamespace: z.string().max(63).regex(DNS_LABEL, 'must be a namespace name').optional(),
    metricsAddr: listenAddress.default({ port: 8080 }),
    healthAddr: listenAddress.default({ port: 8081 }),
    workers: z.coerce.number().int().min(1).max(64).default(4),
    runnerImage: z.string({ error: 'is required' }).min(1, 'is required'),
    runnerServiceAccount: z.string().max(253).regex(DNS_SUBDOMAIN, 'must be a ServiceAccount name').default('bgtask-runner'),
    familiesConfigmap: z.string().max(253).regex(DNS_SUBDOMAIN, 'must be a ConfigMap name').default('bgtask-families'),
    logLevel: z.enum(LOG_LEVELS).default('info'),
    watchStallSeconds: z.coerce.number().int().min(1).max(3600).default(90),
    shutdownTimeoutSeconds: z.coerce.number().int().min(1).max(300).default(20),
    /** How often the served CRD is compared with this build's (crd-check.ts); 0: never. */
    crdCheckSeconds: z.coerce.number().int().min(0).max(86_400).default(300),
    /** From the downward API: the pod's name (event reportingInstance, lease identity) and namespace. */
    podName: z.string().min(1).optional(),
    podNamespace: z.string().min(1).optional(),
    /** The runner's plugin list, so the operator knows the same tasks. */
    taskPlugins: z.string().optional(),
    /** The runner container's image pull policy (unset: Kubernetes' default for the tag). */
    runnerImagePullPolicy: z.enum(PULL_POLICIES).optional(),
    /** Operator-wide environment of every run, before the task's own spec.env (which wins on a name they share). */
    runnerEnv: runnerEnvSchema.optional(),
    runnerEnvFrom: runnerEnvFromSchema.optional(),
    /** Extra volumes of every run's pod, and where the runner container mounts them. */
    runnerVolumes: runnerVolumesSchema.optional(),
    runnerVolumeMounts: runnerVolumeMountsSchema.optional(),
  })
  .superRefine((s, ctx) => {
    const volumes = new Set((s.runnerVolumes ?? []).map((v) => v.name));
    (s.runnerVolumeMounts ?? []).forEach((m, i) => {
      if (!volumes.has(m.name)) ctx.addIssue({ code: 'custom', message: `mounts volume ${JSON.stringify(m.name)}, which --runner-volumes does not define`, path: ['runnerVolumeMounts', i, 'name'] });
    });
  });

export type OperatorSettings = z.output<typeof settingsSchema>;

/** flag (commander's camelCase key) → environment variable */
const ENV: Record<string, string> = {
  namespace: 'WATCH_NAMESPACE',
  leaderElect: 'LEADER_ELECT',
  leaseName: 'LEASE_NAME',
  leaseNamespace: 'LEASE_NAMESPACE',
  metricsAddr: 'METRICS_ADDR',
  healthAddr: 'HEALTH_ADDR',
  workers: 'WORKERS',
  runnerImage: 'RUNNER_IMAGE',
  runnerServiceAccount: 'RUNNER_SERVICE_ACCOUNT',
  familiesConfigmap: 'FAMILIES_CONFIGMAP',
  logLevel: 'LOG_LEVEL',
  watchStallSeconds: 'WATCH_STALL_SECONDS',
  shutdownTimeoutSeconds: 'SHUTDOWN_TIMEOUT_SECONDS',
  crdCheckSeconds: 'CRD_CHECK_SECONDS',
  podName: 'POD_NAME',
  podNamespace: 'POD_NAMESPACE',
  taskPlugins: 'TASK_PLUGINS',
  runnerImagePullPolicy: 'RUNNER_IMAGE_PULL_POLICY',
  runnerEnv: 'RUNNER_ENV',
  runnerEnvFrom: 'RUNNER_ENV_FROM',
  runnerVolumes: 'RUNNER_VOLUMES',
  runnerVolumeMounts: 'RUNNER_VOLUME_MOUNTS',
};

/** Merges flags over environment variables and validates them; throws listing every problem. */
export function resolveSettings(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): OperatorSettings {
  const merged: Record<string, unknown> = {};
  for (const [key, variable] of Object.entries(ENV)) {
    const value = env[variable];
    if (value !== undefined && value !== '') merged[key] = value;
  }
  for (const [key, value] of Object.entries(flags)) if (value !== undefined) merged[key] = value;
  const result = settingsSchema.safeParse(merged);
  if (!result.success) {
    const problems = result.error.issues.map((i) => {
      const key = String(i.path[0] ?? '');
      const name = key ? `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}${ENV[key] ? ` (${ENV[key]})` : ''}` : '(settings)';
      // Where inside a JSON setting: [1].valueFrom.secretKeyRef.key
      const inner = i.path.slice(1).map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
      return `${name}: ${inner ? `${inner}: ` : ''}${i.message}`;
    });
    throw new SettingsError(`invalid settings: ${problems.join('; ')}`);
  }
  return result.data;
}

export class SettingsError extends Error {
  override readonly name = 'SettingsError';
}

export interface MainOptions {
  /** Where the JSON log lines go; default: stdout, synchronously. */
  logTo?: DestinationStream;
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, opts: MainOptions = {}): Promise<number> {
  let exitCode = 0;
  const program = new Command('operator')
    .description('Reconciles BackgroundTasks (workers.personal-assistant.io/v1alpha1) into CronJobs that run the task-runner')
    .exitOverride()
    .showHelpAfterError();

  program
    .command('run')
    .description('run the operator until SIGTERM')
    .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster service account, else $KUBECONFIG or ~/.kube/config)')
    .option('--namespace <ns>', 'watch one namespace (default: all) [WATCH_NAMESPACE]')
    .option('--leader-elect', 'elect a leader through a Lease; standbys keep warm caches [LEADER_ELECT]')
    .option('--lease-name <name>', 'Lease name [LEASE_NAME] (default bgtask-operator)')
    .option('--lease-namespace <ns>', 'Lease namespace [LEASE_NAMESPACE] (default: the pod\'s namespace)')
    .option('--metrics-addr <addr>', 'port or host:port for /metrics [METRICS_ADDR] (default 8080)')
    .option('--health-addr <addr>', 'port or host:port for /healthz and /readyz [HEALTH_ADDR] (default 8081)')
    .option('--workers <n>', 'concurrent reconciles [WORKERS] (default 4)')
    .option('--runner-image <image>', 'task-runner image of the CronJobs [RUNNER_IMAGE] (required)')
    .option('--runner-service-account <name>', 'ServiceAccount of the runs [RUNNER_SERVICE_ACCOUNT] (default bgtask-runner)')
    .option('--runner-image-pull-policy <policy>', `${PULL_POLICIES.join('|')} for the runs' image [RUNNER_IMAGE_PULL_POLICY] (default: Kubernetes' default)`)
    .option('--runner-env <json>', 'JSON list of EnvVar given to every run; a task\'s spec.env wins on the same name [RUNNER_ENV]')
    .option('--runner-env-from <json>', 'JSON list of EnvFromSource given to every run, before the task\'s spec.envFrom [RUNNER_ENV_FROM]')
    .option('--runner-volumes <json>', 'JSON list of Volume added to every run\'s pod [RUNNER_VOLUMES]')
    .option('--runner-volume-mounts <json>', 'JSON list of VolumeMount of the runner container, naming --runner-volumes [RUNNER_VOLUME_MOUNTS]')
    .option('--families-configmap <name>', 'ConfigMap holding families.yaml [FAMILIES_CONFIGMAP] (default bgtask-families)')
    .option('--log-level <level>', `${LOG_LEVELS.join('|')} [LOG_LEVEL] (default info)`)
    .option('--watch-stall-seconds <s>', 'a watch silent this long is restarted [WATCH_STALL_SECONDS] (default 90)')
    .option('--shutdown-timeout-seconds <s>', 'how long SIGTERM waits for in-flight reconciles [SHUTDOWN_TIMEOUT_SECONDS] (default 20)')
    .option('--crd-check-seconds <s>', 'how often the served CRD is compared with the one this operator was built with; 0: never [CRD_CHECK_SECONDS] (default 300)')
    .action(async (flags: Record<string, unknown>) => {
      const settings = resolveSettings(flags, env);
      const log = createLogger(settings.logLevel, opts.logTo);
      const stop = new AbortController();
      const onSignal = (signal: NodeJS.Signals): void => {
        log.info({ signal }, 'shutting down');
        stop.abort(signal);
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
      try {
        exitCode = await runOperator(settings, { log, signal: stop.signal, env });
      } finally {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
    });

  const crd = program.command('crd').description('the BackgroundTask CRD this operator was built with');
  crd
    .command('print')
    .description('write it as YAML (the chart\'s crds/ file), e.g. for GitOps or `kubectl apply --server-side -f -`')
    .action(() => {
      process.stdout.write(customResourceDefinitionYaml());
    });
  crd
    .command('apply')
    .description('make the cluster serve it: server-side apply it (creating it, or bringing an older one up to date), then wait until it is Established; no write when it is served already. The chart runs this before every upgrade')
    .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster service account, else $KUBECONFIG or ~/.kube/config)')
    .option('--timeout-seconds <s>', 'how long to wait for the CRD to be Established (default 60)')
    .action(async (flags: { kubeconfig?: string; timeoutSeconds?: string }) => {
      const timeout = z.coerce.number().int().min(1).max(3600).default(60).safeParse(flags.timeoutSeconds);
      if (!timeout.success) throw new SettingsError(`invalid settings: --timeout-seconds: ${timeout.error.issues[0]?.message}`);
      const log = createLogger('info', opts.logTo);
      let raw: RawApi | undefined;
      try {
        raw = new RawApi(loadKubeConfig({ kubeconfig: flags.kubeconfig }).kubeConfig);
        await applyCrd({ raw, log, establishedTimeoutMs: timeout.data * 1000 });
      } catch (err) {
        log.error({ err }, 'applying the CRD failed');
        process.stderr.write(`operator: ${describeErrorChain(err)}\n`);
        exitCode = 1;
      } finally {
        await raw?.close();
      }
    });

  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof SettingsError) {
      process.stderr.write(`operator: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`operator: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

/** One JSON line per event on stdout (or `to`), synchronous so the last lines are out before exit. */
export function createLogger(level: string, to: DestinationStream = pino.destination({ dest: 1, sync: true })): Logger {
  return pino(
    {
      level,
      base: undefined, // children name their component; pid and hostname add nothing in a pod
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.errWithCause },
    },
    to,
  );
}

// The bundle's entry (dist/operator.mjs): run when executed, not when imported by tests.
if (import.meta.main) {
  process.exit(await main(process.argv));
}
