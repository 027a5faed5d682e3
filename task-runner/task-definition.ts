// The full check of a task definition, for whoever reads task metadata (list, describe, the
// operator): the defaults must pass the BackgroundTask spec's own rules and the params must be
// expressible as JSON Schema. Kept out of the registry's module: it loads the CRD's zod schema,
// which a run does not need and whose construction costs start-up time.
import * as z from 'zod';
import { BACKOFF_KINDS, FAMILIES, TASK_NAME_PATTERN } from '../crds/constants.ts';
import { TASK_NAME_MAX_LENGTH, backgroundTaskSpecSchema } from '../crds/schema.ts';
import { InvalidInputError } from './errors.ts';
import { TASK_NAME, describeCandidate, isZodSchema } from './registry.ts';
import type { AnyTask } from './task.ts';

// Built on first use.
let definitionSchema: z.ZodType | undefined;
function taskDefinitionSchema(): z.ZodType {
  if (definitionSchema) return definitionSchema;
  // A task's defaults become a BackgroundTask's effective spec: they must pass the spec's own rules.
  const spec = backgroundTaskSpecSchema.shape;
  definitionSchema = z
    .object({
      name: z.string().max(TASK_NAME_MAX_LENGTH).regex(TASK_NAME, `must be <family>.<task> in lowercase kebab-case (${TASK_NAME_PATTERN})`),
      family: z.enum(FAMILIES),
      description: z.string().min(1),
      params: z.custom<z.ZodType>(isZodSchema, 'must be a zod schema'),
      defaults: z
        .object({
          schedule: spec.schedule,
          retry: z.object({
            maxRetries: z.int().min(0).max(20),
            delaySeconds: z.int().min(1).max(86_400),
            backoff: z.enum(BACKOFF_KINDS),
            maxDelaySeconds: z.int().min(1).optional(),
          }),
          timeoutSeconds: spec.timeoutSeconds.unwrap(),
          softTimeoutSeconds: z.int().positive(),
        })
        .refine((d) => d.softTimeoutSeconds < d.timeoutSeconds, {
          path: ['softTimeoutSeconds'],
          message: 'must be less than timeoutSeconds',
        }),
      needs: z.strictObject({ postgres: z.boolean().optional(), redis: z.boolean().optional() }),
      run: z.custom<AnyTask['run']>((v) => typeof v === 'function', 'must be a function'),
    })
    .refine((t) => t.name.startsWith(`${t.family}.`), { path: ['name'], message: 'must start with its family' });
  return definitionSchema;
}

/** Checks every rule of a task definition from any source; returns it unchanged or throws naming every problem. */
export function validateTask(candidate: unknown, source: string): AnyTask {
  const result = taskDefinitionSchema().safeParse(candidate);
  const which = describeCandidate(candidate, source);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(task)'}: ${i.message}`);
    throw new InvalidInputError(`${which} is invalid: ${problems.join('; ')}`);
  }
  const task = candidate as AnyTask;
  try {
    // The operator publishes every params schema as JSON Schema: it must be representable.
    z.toJSONSchema(task.params, { io: 'input' });
  } catch (err) {
    throw new InvalidInputError(`${which} is invalid: params cannot be expressed as JSON Schema`, { cause: err });
  }
  return task;
}
