// Claims the e-mail tasks take on shared rows ('sending' with claimed_at and lease_expires_at,
// migration 0014): a claim lapses when the run that took it is surely dead, so another run may
// take it over then and not before.
import type { TaskContext } from '../../task.ts';

/** When a claim this run takes at `at` lapses: the run's lifetime later. */
export function leaseEnd(ctx: Pick<TaskContext<unknown>, 'lifetimeSeconds'>, at: Date): Date {
  return new Date(at.getTime() + ctx.lifetimeSeconds * 1000);
}

/**
 * SQL for when the claim on a row lapses (columns qualified by `alias` when given). A claim without
 * a stored lease (taken by a runner from before migration 0014) lapses as it did then: the
 * task's default timeout, the parameter `defaultSeconds`, after claimed_at.
 */
export function leaseEndsSql(defaultSeconds: string, alias?: string): string {
  const col = (name: string) => (alias ? `${alias}.${name}` : name);
  return `COALESCE(${col('lease_expires_at')}, ${col('claimed_at')} + make_interval(secs => ${defaultSeconds}))`;
}
