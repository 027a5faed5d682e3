// concurrencyPolicy Replace for every run of a task, not only the scheduled ones. The CronJob
// controller replaces the Jobs it made itself when it makes a new one, but it cannot see the
// operator's retry and run-now Jobs: a run-now beside a scheduled run (or the other way round)
// ran both, and a newer run could wait in the family queue behind the very run it replaces.
// So, level-triggered: of a Replace task's unfinished runs, running or waiting for a slot, the
// newest one that may run stays; the older ones are deleted (their pods stopped), which frees
// their slots, and admission passes them over meanwhile.
import type { Run } from './runs.ts';

/**
 * Oldest first. By creationTimestamp (the apiserver's clock, whole seconds); within one second by
 * the operator's created-at (milliseconds) when both Jobs carry it; a tie it cannot break keeps the
 * run already going as the newer, so that it is not stopped on a guess.
 */
export function byAgeForReplace(a: Run, b: Run): number {
  const seconds = Date.parse(a.createdAt) - Date.parse(b.createdAt);
  if (seconds !== 0) return seconds;
  if (a.createdAtPrecise !== undefined && b.createdAtPrecise !== undefined && a.createdAtPrecise !== b.createdAtPrecise) return a.createdAtPrecise - b.createdAtPrecise;
  if (a.admitted !== b.admitted) return a.admitted ? 1 : -1;
  return a.id.localeCompare(b.id);
}

/**
 * The runs that the newest unfinished run that may go (`by`: admitted, or `mayStart`) replaces,
 * oldest first. A waiting run that cannot start (its task suspended) replaces nothing.
 */
export function supersededRuns(runs: readonly Run[], mayStart: (run: Run) => boolean): { by: Run; superseded: Run[] } | undefined {
  const live = runs.filter((r) => !r.result && !r.deleting && (r.admitted || r.queued)).sort(byAgeForReplace);
  const at = live.findLastIndex((r) => r.admitted || mayStart(r));
  return at > 0 ? { by: live[at]!, superseded: live.slice(0, at) } : undefined;
}
