// Operator-wide settings of every run's pod, given as JSON on the command line or in the
// environment (the Helm chart passes its credential Secret references this way): env, envFrom,
// volumes and volume mounts of the runner container. Checked here with the core/v1 shapes the
// apiserver would insist on, so a typo stops the operator at start-up with the flag's name
// instead of failing every CronJob apply later.
//
// Merge with a task's own spec (desired-cronjob.ts): spec.env wins over an operator-wide variable
// of the same name; envFrom lists are concatenated, the operator's first (a later source wins a
// key two sources share); Kubernetes lets any `env` entry win over every `envFrom` source.
import * as z from 'zod';

import { CONFIG_KEY_PATTERN, DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN, ENV_VAR_NAME_PATTERN } from '../../crds/constants.ts';

const ENV_VAR_NAME = new RegExp(ENV_VAR_NAME_PATTERN);
const DNS_LABEL = new RegExp(DNS_LABEL_PATTERN);
const DNS_SUBDOMAIN = new RegExp(DNS_SUBDOMAIN_PATTERN);
const CONFIG_KEY = new RegExp(CONFIG_KEY_PATTERN);

/** The scratch volume every run has (desired-cronjob.ts): its name and mount path are taken. */
export const SCRATCH_VOLUME = 'tmp';
export const SCRATCH_MOUNT_PATH = '/tmp';

const objectName = z.string().max(253).regex(DNS_SUBDOMAIN, 'must be a Secret or ConfigMap name');
const keySelector = z.strictObject({
  name: objectName,
  key: z.string().min(1).max(253).regex(CONFIG_KEY, 'must be a Secret or ConfigMap key'),
  optional: z.boolean().optional(),
});

const envVarSource = z
  .strictObject({
    secretKeyRef: keySelector.optional(),
    configMapKeyRef: keySelector.optional(),
    fieldRef: z.strictObject({ apiVersion: z.string().optional(), fieldPath: z.string().min(1) }).optional(),
    resourceFieldRef: z.strictObject({ containerName: z.string().optional(), resource: z.string().min(1), divisor: z.union([z.string(), z.number()]).optional() }).optional(),
  })
  .refine((s) => Object.values(s).filter((v) => v !== undefined).length === 1, 'must set exactly one of secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef');

export const envVarSchema = z
  .strictObject({
    name: z.string().min(1).max(256).regex(ENV_VAR_NAME, 'must be an environment variable name'),
    value: z.string().optional(),
    valueFrom: envVarSource.optional(),
  })
  .refine((e) => e.value === undefined || e.valueFrom === undefined, 'must not set both value and valueFrom');

const localObjectReference = z.strictObject({ name: objectName, optional: z.boolean().optional() });

export const envFromSourceSchema = z
  .strictObject({
    prefix: z.string().max(253).optional(),
    secretRef: localObjectReference.optional(),
    configMapRef: localObjectReference.optional(),
  })
  .refine((s) => (s.secretRef === undefined) !== (s.configMapRef === undefined), 'must set exactly one of secretRef or configMapRef');

/**
 * A pod volume: a name and exactly one volume source (configMap, secret, emptyDir, csi, ...). The
 * source's own fields are left to the apiserver: there are dozens of kinds.
 */
export const volumeSchema = z
  .looseObject({ name: z.string().max(63).regex(DNS_LABEL, 'must be a volume name (a DNS label)') })
  .superRefine((v, ctx) => {
    const sources = Object.entries(v).filter(([k]) => k !== 'name');
    if (sources.length !== 1 || typeof sources[0]![1] !== 'object' || sources[0]![1] === null || Array.isArray(sources[0]![1])) {
      ctx.addIssue({ code: 'custom', message: 'must have a name and exactly one volume source object (e.g. {"name":"plugins","configMap":{"name":"my-plugins"}})' });
    }
  });

export const volumeMountSchema = z.strictObject({
  name: z.string().max(63).regex(DNS_LABEL, 'must be a volume name (a DNS label)'),
  mountPath: z.string().regex(/^\//, 'must be an absolute path'),
  readOnly: z.boolean().optional(),
  subPath: z.string().optional(),
  subPathExpr: z.string().optional(),
  mountPropagation: z.enum(['None', 'HostToContainer', 'Bidirectional']).optional(),
  recursiveReadOnly: z.enum(['Disabled', 'IfPossible', 'Enabled']).optional(),
});

/** A setting given as a JSON string, parsed and then checked by `schema`. */
export function jsonSetting<T extends z.ZodType>(schema: T) {
  return z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `is not valid JSON: ${(err as Error).message}` });
        return z.NEVER;
      }
    })
    .pipe(schema);
}

const LIST = { error: 'must be a JSON list' };

function uniqueBy<T>(items: readonly T[], key: (item: T) => string, ctx: z.RefinementCtx, what: string): void {
  const seen = new Set<string>();
  items.forEach((item, i) => {
    const k = key(item);
    if (seen.has(k)) ctx.addIssue({ code: 'custom', message: `${what} ${JSON.stringify(k)} given twice`, path: [i] });
    seen.add(k);
  });
}

export const runnerEnvSchema = jsonSetting(
  z.array(envVarSchema, LIST).superRefine((items, ctx) => uniqueBy(items, (e) => e.name, ctx, 'variable')),
);
export const runnerEnvFromSchema = jsonSetting(z.array(envFromSourceSchema, LIST));
export const runnerVolumesSchema = jsonSetting(
  z.array(volumeSchema, LIST).superRefine((items, ctx) => {
    uniqueBy(items, (v) => v.name, ctx, 'volume');
    items.forEach((v, i) => {
      if (v.name === SCRATCH_VOLUME) ctx.addIssue({ code: 'custom', message: `volume name "${SCRATCH_VOLUME}" is the run's scratch volume`, path: [i, 'name'] });
    });
  }),
);
export const runnerVolumeMountsSchema = jsonSetting(
  z.array(volumeMountSchema, LIST).superRefine((items, ctx) => {
    uniqueBy(items, (m) => m.mountPath, ctx, 'mount path');
    items.forEach((m, i) => {
      if (m.mountPath.replace(/\/+$/, '') === SCRATCH_MOUNT_PATH) ctx.addIssue({ code: 'custom', message: `${SCRATCH_MOUNT_PATH} is the run's scratch volume`, path: [i, 'mountPath'] });
    });
  }),
);
