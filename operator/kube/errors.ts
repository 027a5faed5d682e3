// Telling API failures apart. Every request this package makes throws client-node's
// ApiException (the generated clients do too), so callers test one shape.
import { ApiException } from '@kubernetes/client-node';

/**
 * The HTTP status of a failed API request, or undefined when the failure was not an HTTP answer.
 * Only numbers that can be one: a timed-out request's DOMException (TimeoutError) has code 23.
 */
export function statusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  if (typeof err === 'object' && err !== null) {
    const e = err as { code?: unknown; statusCode?: unknown };
    if (isHttpStatus(e.statusCode)) return e.statusCode;
    if (isHttpStatus(e.code)) return e.code;
  }
  return undefined;
}

const isHttpStatus = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 100 && v <= 599;

/** `err` and the errors of its chain of causes, outermost first (at most 10: a cycle ends). */
function* causeChain(err: unknown): Generator<unknown> {
  let e: unknown = err;
  for (let depth = 0; e !== undefined && depth < 10; depth++) {
    yield e;
    e = e instanceof Error ? e.cause : undefined;
  }
}

/** The HTTP status of `err` or of the first error in its chain of causes that has one. */
export function statusInChain(err: unknown): number | undefined {
  for (const e of causeChain(err)) {
    const code = statusCode(e);
    if (code !== undefined) return code;
  }
  return undefined;
}

/**
 * A write refused (409) because the object changed since the cached copy it was computed from:
 * nothing is broken, the cache is behind. The reconcile runs again, with backoff, and by then
 * reads the newer object.
 */
export class StaleObjectError extends Error {
  override readonly name = 'StaleObjectError';
}

/**
 * A reconcile that did all it could but some of its writes failed (their cause attached). It is
 * retried with backoff, yet never later than `requeueAfterMs`, the next moment it had to act on
 * anyway (a schedule, a retry's due time), so a failing write does not put those off.
 */
export class IncompleteReconcileError extends Error {
  override readonly name = 'IncompleteReconcileError';
  constructor(
    cause: unknown,
    readonly requeueAfterMs: number | undefined,
  ) {
    const inner = (cause as Error | undefined)?.cause;
    super(inner === undefined ? describeError(cause) : `${describeError(cause)}: ${describeError(inner)}`, { cause });
  }
}

/** Whether `err` or any error in its chain of causes is a `type`. */
export function causedBy(err: unknown, type: abstract new (...args: never[]) => Error): boolean {
  for (const e of causeChain(err)) if (e instanceof type) return true;
  return false;
}

export const isNotFound = (err: unknown): boolean => statusCode(err) === 404;
export const isConflict = (err: unknown): boolean => statusCode(err) === 409;
/** 410: the resourceVersion asked for has been compacted away; the only way on is a fresh list. */
export const isGone = (err: unknown): boolean => statusCode(err) === 410;

/**
 * A failure worth trying again later: no HTTP answer (connection lost, request timed out), 429 (the
 * apiserver's fairness limits) or a 5xx. Other answers (invalid, forbidden, not found) would come
 * back the same.
 */
export function isTransient(err: unknown): boolean {
  const code = statusInChain(err);
  return code === undefined || code === 429 || code >= 500;
}

/** The server's message of a Status body (or the error's own message), for logs and events. */
export function describeError(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as { message?: unknown } | string | undefined;
    const serverMessage = typeof body === 'object' && body && typeof body.message === 'string' ? body.message : typeof body === 'string' ? body : '';
    return serverMessage ? `${err.message}: ${serverMessage}` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}
