// Worker families: what Celery's per-queue workers were in the seed plan (docker-compose's
// ai_worker, email_worker, … with their --concurrency and memory/CPU limits), as configuration
// the operator applies to every run of a family: the pod's resources and placement, and how many
// runs of the family may run at once across the cluster.
//
// Read from a ConfigMap key `families.yaml` (YAML or JSON). A family or field left out keeps its
// default, so the file only says what differs. A config that does not parse is reported and the
// last good one stays in force: a typo must not change what runs.
import * as z from 'zod';
import { parse as parseYaml } from 'yaml';
import type { Logger } from 'pino';
import { FAMILIES, type Family } from '../../crds/schema.ts';
import { isQuantity, quantityValue } from '../controller/quantity.ts';
import type { EventRecorder } from '../controller/deps.ts';
import type { KubeObject } from '../kube/types.ts';
import { canonicalJson } from '../kube/json.ts';

export const FAMILIES_CONFIG_KEY = 'families.yaml';

export interface ResourceList {
  cpu: string;
  memory: string;
}

export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  tolerationSeconds?: number;
}

export interface FamilyConfig {
  /** Runs of this family running at once, cluster-wide (Celery's --concurrency). */
  concurrency: number;
  resources: { requests: ResourceList; limits: ResourceList };
  priorityClassName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
}

export type FamiliesConfig = Readonly<Record<Family, FamilyConfig>>;

const small = { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } };
const large = { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '1', memory: '1Gi' } };

/** The seed's docker-compose workers: reservations become requests, limits stay limits. */
export const DEFAULT_FAMILIES: FamiliesConfig = Object.freeze({
  ai: { concurrency: 1, resources: small },
  email: { concurrency: 4, resources: large },
  file: { concurrency: 2, resources: large },
  sync: { concurrency: 2, resources: large },
  maintenance: { concurrency: 1, resources: small },
});

// -------------------------------------------------------------------------------------- parsing

const quantity = z
  .union([z.string(), z.number()])
  .transform((v) => String(v))
  .refine(isQuantity, { message: 'must be a resource quantity such as 500m, 1, 256Mi or 1Gi' })
  .refine((v) => (quantityValue(v) ?? 0) >= 0, { message: 'must not be negative' });

const resourceList = z.strictObject({ cpu: quantity.optional(), memory: quantity.optional() });

const labelValue = z.string().max(63).regex(/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/, 'must be a label value');

const toleration = z.strictObject({
  key: z.string().optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: z.string().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: z.int().optional(),
});

const familyOverride = z.strictObject({
  concurrency: z.int().min(0).max(1000).optional().describe('0 pauses the family: its runs stay queued'),
  resources: z.strictObject({ requests: resourceList.optional(), limits: resourceList.optional() }).optional(),
  priorityClassName: z
    .string()
    .max(253)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a PriorityClass name')
    .optional(),
  nodeSelector: z.record(z.string().min(1).max(317), labelValue).optional(),
  tolerations: z.array(toleration).optional(),
});

const familiesFile = z.strictObject(Object.fromEntries(FAMILIES.map((f) => [f, familyOverride.optional()])) as Record<Family, z.ZodOptional<typeof familyOverride>>);

export class FamiliesConfigError extends Error {
  override readonly name = 'FamiliesConfigError';
}

/** Parses `families.yaml`; throws a FamiliesConfigError naming every problem (path: message). */
export function parseFamiliesConfig(text: string, defaults: FamiliesConfig = DEFAULT_FAMILIES): FamiliesConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new FamiliesConfigError(`${FAMILIES_CONFIG_KEY} is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  const parsed = familiesFile.safeParse(raw ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`);
    throw new FamiliesConfigError(`${FAMILIES_CONFIG_KEY} is invalid: ${problems.join('; ')}`);
  }
  const result = {} as Record<Family, FamilyConfig>;
  const problems: string[] = [];
  for (const family of FAMILIES) {
    const base = defaults[family];
    const o = parsed.data[family] ?? {};
    const config: FamilyConfig = {
      concurrency: o.concurrency ?? base.concurrency,
      resources: {
        requests: { ...base.resources.requests, ...stripUndefined(o.resources?.requests) },
        limits: { ...base.resources.limits, ...stripUndefined(o.resources?.limits) },
      },
    };
    const priorityClassName = o.priorityClassName ?? base.priorityClassName;
    const nodeSelector = o.nodeSelector ?? base.nodeSelector;
    const tolerations = o.tolerations ?? base.tolerations;
    if (priorityClassName !== undefined) config.priorityClassName = priorityClassName;
    if (nodeSelector !== undefined) config.nodeSelector = nodeSelector;
    if (tolerations !== undefined) config.tolerations = tolerations.map((t) => stripUndefined(t) as Toleration);
    for (const resource of ['cpu', 'memory'] as const) {
      const request = quantityValue(config.resources.requests[resource]) ?? 0;
      const limit = quantityValue(config.resources.limits[resource]) ?? 0;
      if (request > limit) {
        problems.push(`${family}.resources: the ${resource} request ${config.resources.requests[resource]} exceeds its limit ${config.resources.limits[resource]}`);
      }
    }
    result[family] = config;
  }
  if (problems.length > 0) throw new FamiliesConfigError(`${FAMILIES_CONFIG_KEY} is invalid: ${problems.join('; ')}`);
  return Object.freeze(result);
}

function stripUndefined<T extends object>(value: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The families whose configuration differs between two configs: their tasks need reconciling again. */
export function changedFamilies(before: FamiliesConfig, after: FamiliesConfig): Family[] {
  return FAMILIES.filter((f) => canonicalJson(before[f]) !== canonicalJson(after[f]));
}

// ------------------------------------------------------------------------------- live config

export interface ConfigMapLike extends KubeObject {
  data?: Record<string, string>;
}

export type FamiliesUpdate = { ok: true; changed: Family[] } | { ok: false; error: FamiliesConfigError };

/**
 * The families config in force. The operator feeds it every version of the ConfigMap (or
 * undefined once it is deleted, which means the defaults); the reconciler reads `current()`.
 */
export class FamiliesConfigHolder {
  private config: FamiliesConfig;
  /**
   * Set while this process has never taken a config from the ConfigMap and its latest version was
   * refused: the defaults in `config` are then nobody's choice, and applying them would undo the
   * families' settings on every task (a bad edit, then a restart). See `unusable()`.
   */
  private refusedBeforeAnyGood: FamiliesConfigError | undefined;
  private hadGood = false;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly deps: { log: Logger; events: EventRecorder },
    initial: FamiliesConfig = DEFAULT_FAMILIES,
  ) {
    this.config = initial;
  }

  current(): FamiliesConfig {
    return this.config;
  }

  /**
   * Why the config in force may not be used yet: the ConfigMap's version was refused and no good
   * one was ever taken (after a restart the last good one is not known). Undefined once usable.
   */
  unusable(): string | undefined {
    return this.refusedBeforeAnyGood && `families config refused and no earlier valid one to keep: ${this.refusedBeforeAnyGood.message}`;
  }

  /** Resolves once the config is usable (at once if it is); rejects when `signal` aborts first. */
  async usable(signal: AbortSignal): Promise<void> {
    while (this.unusable() !== undefined) {
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiters.delete(wake);
          signal.removeEventListener('abort', wake);
          resolve();
        };
        this.waiters.add(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  }

  /**
   * Takes a new version of the ConfigMap. A bad one leaves the current config in force and is
   * reported three ways: a Warning Event on the ConfigMap, an error log line, and the returned error.
   */
  update(configMap: ConfigMapLike | undefined): FamiliesUpdate {
    const text = configMap?.data?.[FAMILIES_CONFIG_KEY];
    let next: FamiliesConfig;
    try {
      next = text === undefined ? DEFAULT_FAMILIES : parseFamiliesConfig(text);
    } catch (err) {
      const error = err instanceof FamiliesConfigError ? err : new FamiliesConfigError(String(err), { cause: err });
      this.deps.log.error({ err: error, configMap: configMap?.metadata?.name }, `families config rejected, keeping the previous one: ${error.message}`);
      if (this.hadGood) {
        if (configMap) this.deps.events.record(configMap, 'Warning', 'InvalidFamiliesConfig', `${error.message}; the previous configuration stays in force`, 'LoadConfig');
      } else {
        this.refusedBeforeAnyGood = error;
        if (configMap) this.deps.events.record(configMap, 'Warning', 'InvalidFamiliesConfig', `${error.message}; this operator has no valid configuration to keep and waits for one`, 'LoadConfig');
      }
      return { ok: false, error };
    }
    const changed = changedFamilies(this.config, next);
    this.config = next;
    this.hadGood = true;
    this.refusedBeforeAnyGood = undefined;
    for (const wake of this.waiters) wake();
    if (changed.length > 0) this.deps.log.info({ changed }, 'families config changed');
    return { ok: true, changed };
  }
}
