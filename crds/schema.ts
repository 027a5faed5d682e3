// The BackgroundTask API: the one definition of its fields and rules. The CRD in this folder is
// generated from these zod schemas (crds/generate.ts), and the operator and the task-runner parse
// with them, so a rule holds the same at the apiserver's door and in code.
//
// Kept to zod alone at run time: the operator and the task-runner's registry load it. Plain
// constants are in constants.ts, which loads nothing.
import * as z from 'zod';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import {
  CRON_FIELDS,
  CRON_MACROS,
  FIVE_FIELDS_PATTERN,
  SCHEDULE_MAX_LENGTH,
  SCHEDULE_SHAPE_PATTERN,
  cronFieldMessage,
  rangesAscending,
  scheduleFieldPattern,
} from './cron.ts';
import {
  atMostOneOf,
  comparingFields,
  exactlyOneOf,
  keyedList,
  matching,
  notContaining,
  notEqualIgnoringCase,
  withMaxProperties,
  withRules,
} from './rules.ts';
import {
  BACKOFF_KINDS,
  CONCURRENCY_POLICIES,
  CONFIG_KEY_PATTERN,
  ENV_VAR_NAME_PATTERN,
  FAMILIES,
  GROUP_VERSION,
  KIND,
  MAX_NAME_LENGTH,
  RUN_OUTCOMES,
  RUN_TRIGGERS,
  TASK_NAME_PATTERN,
} from './constants.ts';

// The plain constants live in constants.ts (the task-runner loads them without this schema);
// re-exported so that this module stays the one import for everything about the API.
export * from './constants.ts';

export const metadataNameSchema = z.string().max(MAX_NAME_LENGTH);

/**
 * An IANA time zone name: components of at most 14 characters, not starting with `-` or `.`
 * (the rule the CronJob API applies before loading the zone).
 */
const TIME_ZONE_PATTERN = '^[A-Za-z0-9_+][A-Za-z0-9_+.-]{0,13}(/[A-Za-z0-9_+][A-Za-z0-9_+.-]{0,13})*$';

/** A resource quantity, as in core/v1 (`500m`, `1.5`, `256Mi`, `1e3`), not negative: no container may ask for less than nothing. */
const QUANTITY_PATTERN =
  '^\\+?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

/** metav1.Condition's type and reason formats. */
const CONDITION_TYPE_PATTERN =
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$';
const CONDITION_REASON_PATTERN = '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$';

const MAX_SECONDS = 604_800; // a week: longer than any run or retry delay we mean to support

const dateTime = () => z.iso.datetime({ offset: true });
const objectName = () => z.string().min(1).max(253);

// ---------------------------------------------------------------------------------------- spec

const scheduleSchema = withRules(
  z
    .string()
    .min(1)
    .max(SCHEDULE_MAX_LENGTH)
    .describe(
      `When to run: five cron fields (minute hour day-of-month month day-of-week) or one of ${CRON_MACROS.join(', ')}. ` +
        'Interpreted in spec.timeZone.',
    ),
  [
    notContaining('TZ=', 'must not contain TZ= or CRON_TZ=: set the time zone in spec.timeZone'),
    matching(
      SCHEDULE_SHAPE_PATTERN,
      `must be 5 space-separated cron fields (minute hour day-of-month month day-of-week) or one of ${CRON_MACROS.join(', ')}`,
    ),
    ...CRON_FIELDS.map((field, index) => matching(scheduleFieldPattern(index), cronFieldMessage(field), FIVE_FIELDS_PATTERN)),
    rangesAscending('must use ranges that go from low to high, e.g. MON-FRI or 22-23, not FRI-MON: split a wrapping range into a list such as 22-23,0-2'),
  ],
  { skipUnchanged: true },
);

const timeZoneSchema = withRules(
  z
    .string()
    .max(64)
    .regex(new RegExp(TIME_ZONE_PATTERN))
    .describe('IANA time zone the schedule is interpreted in, e.g. Europe/Berlin. Unset: Etc/UTC (the operator always sets the CronJob time zone, whatever zone the controller manager runs in).'),
  [notEqualIgnoringCase('Local', 'must name an IANA time zone such as Europe/Berlin: Local depends on where the controller runs')],
);

const retrySchema = withRules(
  z
    .object({
      maxRetries: z.int().min(0).max(20).optional().describe('Retries after a failed attempt.'),
      delaySeconds: z.int().min(1).max(86_400).optional().describe('Delay before the first retry; with Exponential, the base the delays double from.'),
      backoff: z.enum(BACKOFF_KINDS).optional().describe('Fixed: every retry waits delaySeconds. Exponential: retry n waits delaySeconds × 2^(n−1), capped at maxDelaySeconds, then jittered to a point between half and all of that (the same for the same run), so runs that failed together do not retry together.'),
      maxDelaySeconds: z.int().min(1).max(MAX_SECONDS).optional().describe('Upper bound of an exponential delay. Unset: 3600 (one hour), or delaySeconds when that is longer.'),
    })
    .describe('Retries of a failed run. Unset maxRetries, delaySeconds and backoff take the task\'s own defaults.'),
  [comparingFields('maxDelaySeconds', '>=', 'delaySeconds', 'must not be less than delaySeconds')],
);

// Quantities are integers or strings, as in core/v1: x-kubernetes-int-or-string in the CRD.
const quantity = (description: string) =>
  z
    .union([z.int().min(0), z.string().max(64).regex(new RegExp(QUANTITY_PATTERN))])
    .meta({ 'x-kubernetes-int-or-string': true, description });

const resourceList = (what: 'request' | 'limit', meaning: string) =>
  z
    .object({
      cpu: quantity(`CPU ${what}, in cores or millicores: 1, 0.5, 500m.`).optional(),
      memory: quantity(`Memory ${what}, in bytes with an optional suffix: 256Mi, 1Gi, 1e9.`).optional(),
    })
    .describe(meaning);

const resourcesSchema = z
  .object({
    requests: resourceList('request', 'What the scheduler reserves on a node for the run.').optional(),
    limits: resourceList('limit', 'What the run may use at most: over its memory limit it is killed (OOMKilled), over its CPU limit throttled.').optional(),
  })
  .describe('CPU and memory of the run\'s container. Unset values take those of the task\'s family (the operator\'s configuration).');

const historySchema = z
  .object({
    successfulRuns: z.int().min(0).max(100).optional().describe('Finished successful Jobs to keep.'),
    failedRuns: z.int().min(0).max(100).optional().describe('Finished failed Jobs to keep.'),
  })
  .describe('How many finished Jobs to keep for inspection.');

const keySelector = (kind: 'Secret' | 'ConfigMap') =>
  z
    .object({
      name: objectName().describe(`Name of the ${kind}, in the task's namespace.`),
      key: z.string().min(1).max(253).regex(new RegExp(CONFIG_KEY_PATTERN)).describe(`The key of the ${kind} whose value is taken.`),
      optional: z.boolean().optional().describe(`Whether the run may start without the ${kind} or its key (the variable is then unset).`),
    })
    .describe(`A key of a ${kind}.`);

const envVarSourceSchema = withRules(
  z
    .object({ secretKeyRef: keySelector('Secret').optional(), configMapKeyRef: keySelector('ConfigMap').optional() })
    .describe('Where the value comes from: exactly one of secretKeyRef or configMapKeyRef.'),
  [exactlyOneOf(['secretKeyRef', 'configMapKeyRef'], 'must set exactly one of secretKeyRef or configMapKeyRef')],
);

const envVarSchema = withRules(
  z
    .object({
      name: z.string().min(1).max(256).regex(new RegExp(ENV_VAR_NAME_PATTERN)).describe('Name of the variable; unique in the list.'),
      value: z.string().max(32_768).optional().describe('The value, as written.'),
      valueFrom: envVarSourceSchema.optional(),
    })
    .describe('One environment variable: a value, or a reference to a Secret or ConfigMap key.'),
  [atMostOneOf(['value', 'valueFrom'], 'must not set both value and valueFrom')],
);

const localObjectReference = (kind: 'Secret' | 'ConfigMap') =>
  z
    .object({
      name: objectName().describe(`Name of the ${kind}, in the task's namespace.`),
      optional: z.boolean().optional().describe(`Whether the run may start without the ${kind}.`),
    })
    .describe(`A ${kind} whose every key becomes a variable.`);

const envFromSourceSchema = withRules(
  z.object({
    prefix: z.string().max(253).optional().describe('Prepended to every key.'),
    secretRef: localObjectReference('Secret').optional(),
    configMapRef: localObjectReference('ConfigMap').optional(),
  }).describe('A Secret or ConfigMap exposed whole: exactly one of secretRef or configMapRef.'),
  [exactlyOneOf(['secretRef', 'configMapRef'], 'must set exactly one of secretRef or configMapRef')],
);

/** A task's name is also a label value (on its CronJob, Jobs and Pods): at most 63 characters. */
export const TASK_NAME_MAX_LENGTH = 63;

export const backgroundTaskSpecSchema = withRules(
  z.object({
    task: z
      .string()
      .max(TASK_NAME_MAX_LENGTH)
      .regex(new RegExp(TASK_NAME_PATTERN))
      .describe(`The task to run, <family>.<name> with family one of ${FAMILIES.join(', ')}; e.g. maintenance.cleanup-old-sessions.`),
    schedule: scheduleSchema,
    timeZone: timeZoneSchema.optional(),
    suspend: z.boolean().default(false).describe('Stops scheduling new runs; running ones finish.'),
    concurrencyPolicy: z
      .enum(CONCURRENCY_POLICIES)
      .default('Forbid')
      .describe(
        'What to do when a run is due while the previous one is still going: Forbid skips it (and a retry or run-now waits for the running one: runs never overlap), Allow runs both, Replace stops the old one (whatever started it: a newer run-now or retry replaces a running or waiting run of the task too).',
      ),
    startingDeadlineSeconds: z
      .int()
      .min(10)
      .default(3600)
      .describe(
        'A run the CronJob controller could not start within this many seconds of its scheduled time is skipped; ' +
          'a run already started and waiting for a slot of its family (Queued) waits until it gets one. ' +
          'Always set: without it the CronJob controller, after an outage of more than 100 missed schedules, ' +
          'stops scheduling the task altogether, silently.',
      ),
    params: z
      .record(z.string(), z.unknown())
      .meta({ 'x-kubernetes-preserve-unknown-fields': true })
      .optional()
      .describe('Task-specific input. The operator checks it against the task\'s params schema on every change (an invalid change is reported as Ready=False, reason InvalidSpec, and leaves the CronJob, with the previous params, as it was); the runner checks it again when it starts.'),
    retry: retrySchema.optional(),
    timeoutSeconds: z.int().min(1).max(MAX_SECONDS).optional().describe('Hard limit of one attempt: the run is killed after it.'),
    softTimeoutSeconds: z
      .int()
      .min(1)
      .optional()
      .describe('Asks the task to stop at its next safe point after this many seconds; must not exceed timeoutSeconds.'),
    resources: resourcesSchema.optional(),
    history: historySchema.optional(),
    env: keyedList(z.array(envVarSchema).max(100), 'name').optional().describe('Extra environment variables of the run.'),
    envFrom: z.array(envFromSourceSchema).max(20).optional().describe('Secrets and ConfigMaps exposed as environment variables.'),
  }).describe('What to run, when, and with what: the desired state.'),
  [comparingFields('softTimeoutSeconds', '<=', 'timeoutSeconds', 'must not exceed timeoutSeconds')],
);

// -------------------------------------------------------------------------------------- status

export const conditionSchema = z
  .object({
    type: z
      .string()
      .min(1)
      .max(316)
      .regex(new RegExp(CONDITION_TYPE_PATTERN))
      .describe('Ready: the CronJob matches the spec (False, reason InvalidSpec, when the spec cannot be run). LastRunSucceeded: the outcome of the newest finished run. Queued: a run waits (reason WaitingForFamilySlot, WaitingForRunningRun under concurrencyPolicy Forbid, or WaitingForResume while the task is suspended).'),
    status: z.enum(['True', 'False', 'Unknown']).describe('True, False or Unknown.'),
    observedGeneration: z.int().min(0).optional().describe('The metadata.generation this condition was computed from.'),
    lastTransitionTime: dateTime().describe('When status last changed.'),
    reason: z.string().min(1).max(1024).regex(new RegExp(CONDITION_REASON_PATTERN)).describe('Why, in one UpperCamelCase word, for programs.'),
    message: z.string().max(32_768).describe('Why, for humans.'),
  })
  .describe('One aspect of the task\'s state, as metav1.Condition.');

const activeRunSchema = z
  .object({
    name: objectName().describe('Name of the Job.'),
    runId: z.string().optional().describe('The run\'s id, as in the runner\'s logs and report.'),
    queued: z.boolean().optional().describe('Waiting for a worker slot rather than running.'),
  })
  .describe('A run started and not finished yet.');

// Summary values are number, string or boolean. A structural schema can declare no such union
// (only int-or-string, which refuses floats and booleans), and CEL cannot inspect an untyped value,
// so the CRD leaves the value open (x-kubernetes-preserve-unknown-fields) and zod narrows it where
// the operator reads a runner's report (operator/controller/runs.ts).
const summaryValueSchema = z
  .union([z.number(), z.string().max(1024), z.boolean()])
  .meta({ 'x-kubernetes-preserve-unknown-fields': true, description: 'A number, a string or a boolean.' });

export const lastRunSchema = z.object({
  runId: z.string().min(1).describe('The run\'s id, as in the runner\'s logs and report.'),
  trigger: z.enum(RUN_TRIGGERS).describe(`What started it: ${RUN_TRIGGERS.join(', ')}.`),
  attempt: z.int().min(1).describe('1 for the first attempt, 2 for its first retry, and so on.'),
  startTime: dateTime().describe('When the run started.'),
  completionTime: dateTime().optional().describe('When the run ended; unset while it is still going.'),
  durationSeconds: z.number().min(0).optional().describe('Wall time of the run, in seconds.'),
  outcome: z.enum(RUN_OUTCOMES).optional().describe('How the run ended; unset while it is still going. Cancelled: its Job was deleted before it finished (never retried).'),
  summary: withMaxProperties(z.record(z.string(), summaryValueSchema), 64)
    .optional()
    .describe('Counters and facts the task reported, e.g. {"sessions_cleaned": 1000, "batches": 2}.'),
  message: z.string().max(1024).optional().describe('What the task reported, or why the run ended without a report (e.g. OOMKilled).'),
}).describe('The newest run: running, or the last one to finish.');

export const backgroundTaskStatusSchema = z
  .object({
    observedGeneration: z.int().min(0).optional().describe('The metadata.generation the operator last acted on.'),
    conditions: keyedList(z.array(conditionSchema), 'type').optional().describe('Ready, LastRunSucceeded and Queued, as metav1.Condition.'),
    family: z.enum(FAMILIES).optional().describe('The task\'s family, whose limits, concurrency and placement its runs get.'),
    cronJobName: z.string().optional().describe('The CronJob that schedules the task, in the same namespace.'),
    lastScheduleTime: dateTime().optional().describe('When a run was last scheduled.'),
    nextScheduleTime: dateTime().optional().describe('When the next scheduled run is due; unset while suspended.'),
    lastSuccessfulTime: dateTime().optional().describe('When a run last succeeded.'),
    lastFailureTime: dateTime().optional().describe('When a run last failed.'),
    lastCancellationTime: dateTime().optional().describe('When a run was last cancelled (its Job deleted before it finished).'),
    active: z.array(activeRunSchema).optional().describe('Runs started and not finished yet.'),
    lastRun: lastRunSchema.optional(),
    succeeded: z.int().min(0).optional().describe('Runs that succeeded since the task was created, each counted once, also after its Job is deleted.'),
    failed: z.int().min(0).optional().describe('Runs that failed, counted like succeeded.'),
    cancelled: z.int().min(0).optional().describe('Runs cancelled (their Job deleted before they finished: by hand, or replaced under concurrencyPolicy Replace), counted like succeeded; unset until one is. Neither failures nor retried.'),
    consecutiveFailures: z.int().min(0).optional().describe('Failed runs since the last success; 0 after a success.'),
  })
  .describe('What was observed, written by the operator (and lastRun by the runner): never set it by hand.');

// ------------------------------------------------------------------------------------ resource

/** A whole manifest. Metadata is checked only for what the CRD restricts (the name); the rest passes through. */
export const backgroundTaskSchema = z.object({
  apiVersion: z.literal(GROUP_VERSION),
  kind: z.literal(KIND),
  metadata: z.looseObject({ name: metadataNameSchema.optional() }),
  spec: backgroundTaskSpecSchema,
  status: backgroundTaskStatusSchema.optional(),
});

/** A spec as read back from the apiserver: defaults applied. */
export type BackgroundTaskSpec = z.output<typeof backgroundTaskSpecSchema>;
/** A spec as written by a user: defaulted fields optional. */
export type BackgroundTaskSpecInput = z.input<typeof backgroundTaskSpecSchema>;
export type BackgroundTaskStatus = z.output<typeof backgroundTaskStatusSchema>;
export type LastRun = z.output<typeof lastRunSchema>;
export type Condition = z.output<typeof conditionSchema>;

export interface BackgroundTask {
  apiVersion: string;
  kind: string;
  metadata: V1ObjectMeta;
  spec: BackgroundTaskSpec;
  status?: BackgroundTaskStatus;
}

/** Parses an object read from the apiserver or a manifest; throws a ZodError listing every violation. */
export function parseBackgroundTask(value: unknown): BackgroundTask {
  return backgroundTaskSchema.parse(value) as BackgroundTask;
}
