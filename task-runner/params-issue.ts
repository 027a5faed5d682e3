// A params problem as the runner (exit 2) and the operator (InvalidSpec) report it: zod's message,
// and for a key the task does not take, the param it looks like a typo of.
import * as z from 'zod';
import { nearestName } from './nearest-name.ts';

export function paramsIssueMessage(schema: z.ZodType, issue: z.core.$ZodIssue): string {
  // Top-level keys only: every task's params are one object, and nested ones are rare.
  if (issue.code !== 'unrecognized_keys' || issue.path.length > 0 || !(schema instanceof z.ZodObject)) return issue.message;
  const known = Object.keys(schema.shape);
  const hints = issue.keys.flatMap((key) => {
    const nearest = nearestName(key, known);
    return nearest ? [issue.keys.length === 1 ? nearest : `${nearest} (for ${JSON.stringify(key)})`] : [];
  });
  return hints.length > 0 ? `${issue.message}; did you mean ${hints.join(', ')}?` : issue.message;
}
