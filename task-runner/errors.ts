/**
 * Input that no retry can fix — an unknown task, params failing their schema, an invalid
 * configuration or plugin. The runner exits 2 for it, and the operator never retries it.
 */
export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
}

/** Why a run was asked to stop early; it is the abort signal's `reason`. */
export class RunAborted extends Error {
  override name = 'RunAborted';
  readonly outcome: 'Interrupted' | 'TimedOut';
  constructor(outcome: 'Interrupted' | 'TimedOut', message: string) {
    super(message);
    this.outcome = outcome;
  }
}

/**
 * One line naming an error and every cause under it, so a status message or a log line
 * carries the root cause ("postgres query failed: connect ECONNREFUSED 127.0.0.1:5432").
 * An AggregateError (e.g. a connect to both ::1 and 127.0.0.1) has an empty message: its
 * inner errors are listed instead.
 */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  let current: unknown = err;
  while (current !== undefined && current !== null && !seen.has(current) && parts.length < 8) {
    seen.add(current);
    if (current instanceof AggregateError && current.errors.length > 0) {
      const inner = current.errors.map((e) => describeError(e)).join('; ');
      parts.push(current.message ? `${current.message} (${inner})` : inner);
    } else if (current instanceof Error) {
      parts.push(current.message || current.name);
    } else {
      parts.push(String(current));
    }
    current = current instanceof Error ? current.cause : undefined;
  }
  // Skip a cause that only repeats its parent (common when libraries wrap errors).
  return parts.filter((p, i) => i === 0 || !parts[i - 1]!.endsWith(p)).join(': ');
}
