// When a task's CronJob runs, computed the way Kubernetes' CronJob controller computes it
// (pkg/controller/cronjob/utils.go: mostRecentScheduleTime, nextScheduleTimeDuration), so the
// status's nextScheduleTime names the moment a Job will really be created, and the reconciler
// can requeue itself for it.
import { parseCron, type CronSchedule } from './cron.ts';
import { Zone } from './zoned-time.ts';

/** The time zone a CronJob without spec.timeZone runs in; set explicitly so it never depends on the controller host. */
export const DEFAULT_TIME_ZONE = 'Etc/UTC';

/** Parses a task's schedule in its time zone; throws CronSyntaxError or UnknownTimeZoneError. */
export function compileSchedule(schedule: string, timeZone: string | undefined): CronSchedule {
  return parseCron(schedule, Zone.load(timeZone ?? DEFAULT_TIME_ZONE));
}

export type MissedSchedules = 'none' | 'few' | 'many';

export interface ScheduleState {
  /** The CronJob's status.lastScheduleTime, else its creation time (epoch ms). */
  earliest: number;
  /** spec.startingDeadlineSeconds, when the deadline is to be applied. */
  startingDeadlineSeconds?: number | undefined;
}

export interface MostRecent {
  earliest: number;
  /** The latest scheduled time in (earliest, now], if any. */
  mostRecent?: number;
  missed: MissedSchedules;
}

export class InvalidScheduleError extends Error {
  override readonly name = 'InvalidScheduleError';
}

/**
 * utils.go mostRecentScheduleTime: the latest scheduled time after `earliest` (moved up to
 * now − startingDeadlineSeconds when given) that is not after `now`, and how many were missed.
 * Throws InvalidScheduleError for a schedule whose two next runs are under a second apart or that
 * never fires (`0 0 30 2 *`), which the CronJob controller refuses the same way.
 */
export function mostRecentScheduleTime(schedule: CronSchedule, state: ScheduleState, now: number): MostRecent {
  let earliest = state.earliest;
  if (state.startingDeadlineSeconds !== undefined) {
    const schedulingDeadline = now - state.startingDeadlineSeconds * 1000;
    if (schedulingDeadline > earliest) earliest = schedulingDeadline;
  }
  const t1 = schedule.next(earliest);
  if (t1 === undefined) throw new InvalidScheduleError(`schedule ${JSON.stringify(schedule.expression)} never fires`);
  if (now < t1) return { earliest, missed: 'none' };
  const t2 = schedule.next(t1);
  if (t2 === undefined) throw new InvalidScheduleError(`schedule ${JSON.stringify(schedule.expression)} never fires again`);
  if (now < t2) return { earliest, mostRecent: t1, missed: 'none' };

  const between = Math.round((t2 - t1) / 1000);
  if (between < 1) throw new InvalidScheduleError('time difference between two schedules is less than 1 second');
  // The controller's rough count of missed times, then a walk from just before the last ones.
  const missedCount = Math.trunc(Math.trunc((now - t1) / 1000) / between) + 1;
  const potentialEarliest = t1 + (missedCount - 2) * between * 1000;
  let mostRecent: number | undefined;
  for (let t = schedule.next(potentialEarliest); t !== undefined && t <= now; t = schedule.next(t)) mostRecent = t;
  const missed: MissedSchedules = missedCount > 100 ? 'many' : missedCount > 0 ? 'few' : 'none';
  return mostRecent === undefined ? { earliest, missed } : { earliest, mostRecent, missed };
}

/**
 * When the CronJob controller next wakes for this CronJob to create a Job (utils.go
 * nextScheduleTimeDuration, without its 100 ms of padding): the schedule's next time after the
 * most recent scheduled time, after `earliest` when none was missed, or after now.
 */
export function nextScheduleTime(schedule: CronSchedule, earliest: number, now: number): number | undefined {
  let from: number;
  try {
    const recent = mostRecentScheduleTime(schedule, { earliest }, now);
    from = recent.mostRecent ?? (recent.missed === 'none' ? recent.earliest : now);
  } catch (err) {
    if (!(err instanceof InvalidScheduleError)) throw err;
    from = now;
  }
  return schedule.next(from);
}
