// concurrencyPolicy Replace for every run of a task, not only the scheduled ones. The CronJob
// controller replaces the Jobs it made itself when it makes a new one, but it cannot see the
// operator's retry and run-now Jobs: a run-now beside a scheduled run (or the other way round)
// ran both, and a newer run could wait in the family queue behind the very run it replaces.
// So, level-triggered: of a Replace task's unfinished runs, running or waiting for a slot, only
// the newest stays; the older ones are deleted (their pods stopped), which frees their slots.
import type { Run } from './runs.ts';

/** The runs the newest unfinished one (`by`) replaces, oldest first. */
export function supersededRuns(runs: readonly Run[]): { by: Run; superseded: Run[] } | undefined {
  // By the precise creation time: a run-now made in the same second as the run it replaces is newer.
  const live = runs.filter((r) => !r.result && !r.deleting && (r.admitted || r.queued)).sort((a, b) => a.createdAtMs - b.createdAtMs || a.id.localeCompare(b.id));
  return live.length > 1 ? { by: live.at(-1)!, superseded: live.slice(0, -1) } : undefined;
}
