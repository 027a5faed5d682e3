// What the CRD schema cannot check, because it needs the registry or a time-zone database: the
// task exists, its params pass the task's own schema, the schedule parses and fires, the time
// zone is known, and the resources and timeouts it ends up with are consistent. A task that
// fails here is reported (Ready=False, reason InvalidSpec, the field named) and its existing
// CronJob is left as it was.
import { backgroundTaskSpecSchema } from '../../crds/schema.ts';
import type { FamiliesConfig, FamilyConfig } from '../config/families.ts';
import type { CronSchedule } from './cron.ts';
import type { Task, TaskCatalog, TaskMetadata } from './deps.ts';
import { effectiveResources, effectiveTimeoutSeconds } from './desired-cronjob.ts';
import { quantityValue } from './quantity.ts';
import { compileSchedule } from './schedule.ts';
import { familyOf, type Family } from '../../crds/schema.ts';
import { paramsIssueMessage } from '../../task-runner/params-issue.ts';
import { unknownTaskMessage } from '../../task-runner/unknown-task.ts';

export type Validation =
  | { ok: true; meta: TaskMetadata; family: Family; familyConfig: FamilyConfig; schedule: CronSchedule }
  | { ok: false; field: string; message: string };

/** zod issues as `path: message; …`, each path under `root`. */
export function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[], root: string): string {
  return issues.map((i) => `${[root, ...i.path.map(String)].join('.')}: ${i.message}`).join('; ');
}

const invalid = (field: string, message: string): Validation => ({ ok: false, field, message: `${field}: ${message}` });

export function validateTask(task: Task, registry: TaskCatalog, families: FamiliesConfig, now: number): Validation {
  // The apiserver checked the spec against the CRD; an object stored under an older CRD may not pass today's.
  const spec = backgroundTaskSpecSchema.safeParse(task.spec);
  if (!spec.success) {
    const first = spec.error.issues[0];
    return { ok: false, field: ['spec', ...(first?.path ?? []).map(String)].join('.'), message: describeIssues(spec.error.issues, 'spec') };
  }

  const meta = registry.get(task.spec.task);
  if (!meta) {
    return invalid('spec.task', unknownTaskMessage(task.spec.task, registry.tasks.map((t) => t.name)));
  }
  const family = familyOf(task.spec.task);

  const params = meta.params.safeParse(task.spec.params ?? {});
  if (!params.success) {
    const first = params.error.issues[0];
    const issues = params.error.issues.map((i) => ({ path: i.path, message: paramsIssueMessage(meta.params, i) }));
    return { ok: false, field: ['spec.params', ...(first?.path ?? []).map(String)].join('.'), message: describeIssues(issues, 'spec.params') };
  }

  let schedule: CronSchedule;
  try {
    schedule = compileSchedule(task.spec.schedule, task.spec.timeZone);
  } catch (err) {
    const field = (err as Error).name === 'UnknownTimeZoneError' ? 'spec.timeZone' : 'spec.schedule';
    return invalid(field, (err as Error).message);
  }
  if (schedule.next(now) === undefined) return invalid('spec.schedule', `${JSON.stringify(task.spec.schedule)} never fires`);

  const familyConfig = families[family];
  const resources = effectiveResources(task, familyConfig);
  for (const resource of ['cpu', 'memory'] as const) {
    const request = quantityValue(resources.requests[resource]);
    const limit = quantityValue(resources.limits[resource]);
    if (request !== undefined && limit !== undefined && request > limit) {
      const field = task.spec.resources?.requests?.[resource] !== undefined ? `spec.resources.requests.${resource}` : `spec.resources.limits.${resource}`;
      return invalid(field, `the ${resource} request ${resources.requests[resource]} exceeds the limit ${resources.limits[resource]} (family ${family} defaults apply where the spec is silent)`);
    }
  }

  const soft = task.spec.softTimeoutSeconds;
  const hard = effectiveTimeoutSeconds(task, meta);
  if (soft !== undefined && soft > hard) return invalid('spec.softTimeoutSeconds', `${soft} exceeds the timeout of ${hard} seconds (the task's default)`);

  return { ok: true, meta, family, familyConfig, schedule };
}
