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

/** A resource quantity, as in core/v1 (`500m`, `1.5`, `256Mi`, `1e3`). */
const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

/** The environment variable names core/v1 accepts for containers. */

/** The keys a ConfigMap or a Secret may hold. */

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
);

const timeZoneSchema = withRules(
  z
    .string()
    .max(64)
    .regex(new RegExp(TIME_ZONE_PATTERN))
    .describe('IANA time zone the schedule is interpreted in, e.g. Europe/Berlin. Unset: the time zone of kube-controller-manager, UTC on most clusters.'),
  [notEqualIgnoringCase('Local', 'must name an IANA time zone such as Europe/Berlin: Local depends on where the controller runs')],
);

const retrySchema = withRules(
  z
    .object({
      maxRetries: z.int().min(0).max(20).optional().describe('Retries after a failed attempt.'),
      delaySeconds: z.int().min(1).max(86_400).optional().describe('Delay before the first retry.'),
      backoff: z.enum(BACKOFF_KINDS).optional().describe('Fixed: every retry waits delaySeconds. Exponential: the delay doubles.'),
      maxDelaySeconds: z.int().min(1).max(MAX_SECONDS).optional().describe('Upper bound of an exponential delay.'),
    })
    .describe('Retries of a failed run. Unset fields take the task\'s own defaults.'),
  [comparingFields('maxDelaySeconds', '>=', 'delaySeconds', 'must not be less than delaySeconds')],
);

// Quantities are integers or strings, as in core/v1: x-kubernetes-int-or-string in the CRD.
const quantitySchema = z
  .union([z.int(), z.string().max(64).regex(new RegExp(QUANTITY_PATTERN))])
  .meta({ 'x-kubernetes-int-or-string': true });

const resourceListSchema = z.object({ cpu: quantitySchema.optional(), memory: quantitySchema.optional() });

const resourcesSchema = z
  .object({ requests: resourceListSchema.optional(), limits: resourceListSchema.optional() })
  .describe('CPU and memory of the run\'s container. Unset values take the task\'s own defaults.');

const historySchema = z
  .object({
    successfulRuns: z.int().min(0).max(100).optional().describe('Finished successful Jobs to keep.'),
    failedRuns: z.int().min(0).max(100).optional().describe('Finished failed Jobs to keep.'),
  })
  .describe('How many finished Jobs to keep for inspection.');

const keySelectorSchema = z.object({
  name: objectName().describe('Name of the Secret or ConfigMap.'),
  key: z.string().min(1).max(253).regex(new RegExp(CONFIG_KEY_PATTERN)),
  optional: z.boolean().optional(),
});

const envVarSourceSchema = withRules(
  z.object({ secretKeyRef: keySelectorSchema.optional(), configMapKeyRef: keySelectorSchema.optional() }),
  [exactlyOneOf(['secretKeyRef', 'configMapKeyRef'], 'must set exactly one of secretKeyRef or configMapKeyRef')],
);

const envVarSchema = withRules(
  z.object({
    name: z.string().min(1).max(256).regex(new RegExp(ENV_VAR_NAME_PATTERN)),
    value: z.string().max(32_768).optional(),
    valueFrom: envVarSourceSchema.optional(),
  }),
  [atMostOneOf(['value', 'valueFrom'], 'must not set both value and valueFrom')],
);

const localObjectReferenceSchema = z.object({ name: objectName(), optional: z.boolean().optional() });

const envFromSourceSchema = withRules(
  z.object({
    prefix: z.string().max(253).optional().describe('Prepended to every key.'),
    secretRef: localObjectReferenceSchema.optional(),
    configMapRef: localObjectReferenceSchema.optional(),
  }),
  [exactlyOneOf(['secretRef', 'configMapRef'], 'must set exactly one of secretRef or configMapRef')],
);

export const backgroundTaskSpecSchema = withRules(
  z.object({
    task: z
      .string()
      .max(100)
      .regex(new RegExp(TASK_NAME_PATTERN))
      .describe(`The task to run, <family>.<name> with family one of ${FAMILIES.join(', ')}; e.g. email.digest.`),
    schedule: scheduleSchema,
    timeZone: timeZoneSchema.optional(),
    suspend: z.boolean().default(false).describe('Stops scheduling new runs; running ones finish.'),
    concurrencyPolicy: z
      .enum(CONCURRENCY_POLICIES)
      .default('Forbid')
      .describe('What to do when a run is due while the previous one is still going: Forbid skips it, Allow runs both, Replace stops the old one.'),
    startingDeadlineSeconds: z
      .int()
      .min(10)
      .default(3600)
      .describe(
        'A run that could not start within this many seconds of its scheduled time is skipped. ' +
          'Always set: without it the CronJob controller, after an outage of more than 100 missed schedules, ' +
          'stops scheduling the task altogether, silently.',
      ),
    params: z
      .record(z.string(), z.unknown())
      .meta({ 'x-kubernetes-preserve-unknown-fields': true })
      .optional()
      .describe('Task-specific input, validated by the task itself when it starts.'),
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
  }),
  [comparingFields('softTimeoutSeconds', '<=', 'timeoutSeconds', 'must not exceed timeoutSeconds')],
);

// -------------------------------------------------------------------------------------- status

export const conditionSchema = z.object({
  type: z.string().min(1).max(316).regex(new RegExp(CONDITION_TYPE_PATTERN)),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: z.int().min(0).optional(),
  lastTransitionTime: dateTime(),
  reason: z.string().min(1).max(1024).regex(new RegExp(CONDITION_REASON_PATTERN)),
  message: z.string().max(32_768),
});

const activeRunSchema = z.object({
  name: objectName().describe('Name of the Job.'),
  runId: z.string().optional(),
  queued: z.boolean().optional().describe('Waiting for a worker slot rather than running.'),
});

// Summary values are number, string or boolean. A structural schema can declare no such union
// (only int-or-string, which refuses floats and booleans), and CEL cannot inspect an untyped value,
// so the CRD leaves the value open (x-kubernetes-preserve-unknown-fields) and zod narrows it: the
// operator, which alone writes status, parses with this schema before writing.
const summaryValueSchema = z
  .union([z.number(), z.string().max(1024), z.boolean()])
  .meta({ 'x-kubernetes-preserve-unknown-fields': true });

export const lastRunSchema = z.object({
  runId: z.string().min(1),
  trigger: z.enum(RUN_TRIGGERS),
  attempt: z.int().min(1),
  startTime: dateTime(),
  completionTime: dateTime().optional(),
  durationSeconds: z.number().min(0).optional(),
  outcome: z.enum(RUN_OUTCOMES).optional().describe('Unset while the run is still going.'),
  summary: withMaxProperties(z.record(z.string(), summaryValueSchema), 64)
    .optional()
    .describe('Counters and facts the task reported, e.g. {"emailsSent": 3}.'),
  message: z.string().max(1024).optional(),
});

export const backgroundTaskStatusSchema = z.object({
  observedGeneration: z.int().min(0).optional(),
  conditions: keyedList(z.array(conditionSchema), 'type').optional(),
  family: z.enum(FAMILIES).optional(),
  cronJobName: z.string().optional(),
  lastScheduleTime: dateTime().optional(),
  nextScheduleTime: dateTime().optional(),
  lastSuccessfulTime: dateTime().optional(),
  lastFailureTime: dateTime().optional(),
  active: z.array(activeRunSchema).optional().describe('Runs started and not finished yet.'),
  lastRun: lastRunSchema.optional(),
  succeeded: z.int().min(0).optional(),
  failed: z.int().min(0).optional(),
  consecutiveFailures: z.int().min(0).optional(),
});

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
