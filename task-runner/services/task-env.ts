/**
 * Settings a task reads from the environment beyond the runner's own (config.ts): SMTP, Notion,
 * file roots. config.ts keeps only what the runner itself uses and drops other variables, so a
 * task parses its own here, with the same rules: an empty variable counts as unset, values are
 * never echoed, and an invalid one is input no retry can fix (exit 2).
 */
import * as z from 'zod';
import { InvalidInputError } from '../errors.ts';

export function taskEnv<S extends z.ZodObject>(schema: S, who: string, env: NodeJS.ProcessEnv = process.env): z.output<S> {
  const set = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(set);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`);
    throw new InvalidInputError(`invalid configuration for ${who}: ${problems.join('; ')}`);
  }
  return result.data;
}

/** A list of absolute paths separated by ':' (as PATH is), e.g. BGTASK_FILE_ROOTS=/data/tmp:/var/cache/app. */
export const pathList = z
  .string()
  .transform((v) => v.split(':').map((s) => s.trim()).filter(Boolean))
  .pipe(z.array(z.string().startsWith('/', 'every path must be absolute')));
