import { InvalidInputError, describeError } from './errors.ts';
import { paramsIssueMessage } from './params-issue.ts';
import type { AnyTask } from './task.ts';

/**
 * Parses `--params` JSON against the task's schema. Every problem names its field path and
 * the reason, so the message alone tells the author what to fix. No params means `{}`.
 */
export function parseParams(task: AnyTask, json: string | undefined): unknown {
  let raw: unknown = {};
  if (json !== undefined) {
    try {
      raw = JSON.parse(json);
    } catch (err) {
      throw new InvalidInputError(`invalid params for ${task.name}: not valid JSON (${describeError(err)})`, { cause: err });
    }
  }
  const result = task.params.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(params)'}: ${paramsIssueMessage(task.params, i)}`);
    throw new InvalidInputError(`invalid params for ${task.name}: ${problems.join('; ')}`);
  }
  return result.data;
}
