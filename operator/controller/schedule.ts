// When a task's CronJob runs, computed the way Kubernetes' CronJob controller computes it
// (pkg/controller/cronjob/utils.go: mostRecentScheduleTime, nextScheduleTimeDuration), so the
// status's nextScheduleTime names the moment a Job will really be created, and the reconciler
// can requeue itself for it.
import { LRUCache } from 'lru-cache';
import { parseCron, type CronSchedule } from './cron.ts';
import { Zone } from './zoned-time.ts';

/** The time zone a CronJob without spec.timeZone runs in; set explicitly so it never depends on the controller host. */
export const DEFAULT_TIME_ZONE = 'Etc/UTC';

/** Compiled schedules by time zone and expression: tasks share a few schedules. */
const compiled = new LRUCache<string, CronSchedule>({ max: 256 });

/** Parses a task's schedule in its time zone; throws CronSyntaxError or UnknownTimeZoneError. */
export function compileSchedule(schedule: string, timeZone: string | undefined): CronSchedule {
  const zone = timeZone ?? DEFAULT_TIME_ZONE;
  const key = `${zone} ${schedule}`;
  let cron = compiled.get(key);
  if (!cron) {
    cron = parseCron(schedule, Zone.load(zone)); // a schedule that throws is not cached
    compiled.set(key, cron);
  }
  return cron;
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

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** How far ahead the interval looks: every weekly pattern and most monthly ones (1st-10th) show in it. */
const INTERVAL_WINDOW_MS = 35 * DAY_MS;
/** Bounds the walk over matching days (at most one a day within the window, plus the one after it). */
const INTERVAL_MAX_DAYS = 40;

/**
 * The task's expected interval between scheduled runs, in seconds: the longest gap between two
 * consecutive scheduled times from `now` over the coming five weeks, in the schedule's time zone.
 * The longest, not the next, so that a weekday schedule reports its weekend and a dead-man's
 * switch built on it does not fire every Monday morning; a daylight-saving change within the
 * window adds its hour. Undefined when the schedule never fires.
 *
 * Cheap enough for a scrape: every matching day fires at each hour × minute of the schedule, so
 * the gaps within a day come from those two lists, and only the gaps between matching days are
 * walked with next() (two calls a matching day), not every run of a `* * * * *` schedule.
 */
export function scheduleIntervalSeconds(schedule: CronSchedule, now: number): number | undefined {
  const { minutes, hours, zone } = schedule;
  if (minutes.length === 0 || hours.length === 0) return undefined;
  let longest = 0;
  for (let i = 1; i < minutes.length; i++) longest = Math.max(longest, (minutes[i]! - minutes[i - 1]!) * MINUTE_MS);
  const hourSpan = (minutes.at(-1)! - minutes[0]!) * MINUTE_MS;
  for (let i = 1; i < hours.length; i++) longest = Math.max(longest, (hours[i]! - hours[i - 1]!) * 60 * MINUTE_MS - hourSpan);

  let dayFirst = schedule.next(now);
  if (dayFirst === undefined) return undefined;
  const end = dayFirst + INTERVAL_WINDOW_MS;
  let betweenDays = 0;
  for (let i = 0; i < INTERVAL_MAX_DAYS; i++) {
    const w = zone.wall(dayFirst);
    // The day's last run, at its latest hour and minute (Go's rules where DST skips or repeats it).
    const dayLast = Math.max(dayFirst, zone.date(w.year, w.month, w.day, hours.at(-1)!, minutes.at(-1)!, 0));
    const following = schedule.next(dayLast);
    if (following === undefined) break;
    betweenDays = Math.max(betweenDays, following - dayLast);
    if (following > end) break;
    dayFirst = following;
  }
  longest = Math.max(longest, betweenDays);
  return longest > 0 ? Math.round(longest / 1000) : undefined;
}

/** How long a computed interval is trusted: daylight-saving changes move in and out of the window. */
const INTERVAL_TTL_MS = 3_600_000;
/** Intervals computed per scrape at most (a daily schedule takes ~50 ms); the rest wait for the next scrape. */
const INTERVAL_COMPUTATIONS_PER_ROUND = 10;

/**
 * scheduleIntervalSeconds per (schedule, time zone), recomputed after an hour: thousands of tasks
 * share a few schedules, and a scrape computes each once. A round (one scrape) computes at most a
 * few: beyond that a stale interval is served as it is and a new one is left out until a later
 * round, so a scrape stays fast however many distinct schedules appear at once. A schedule that
 * fails to parse (bad cron or time zone) gives undefined.
 */
export class ScheduleIntervals {
  private readonly cache = new Map<string, { seconds: number | undefined; at: number }>();
  private budget: number;

  constructor(private readonly perRound = INTERVAL_COMPUTATIONS_PER_ROUND) {
    this.budget = perRound;
  }

  /** Starts a round: resets the computation budget and forgets schedules not recomputed for a while. */
  beginRound(now: number): void {
    this.budget = this.perRound;
    for (const [key, entry] of this.cache) if (now - entry.at >= 2 * INTERVAL_TTL_MS) this.cache.delete(key);
  }

  get(expression: string, timeZone: string | undefined, now: number): number | undefined {
    const key = `${timeZone ?? DEFAULT_TIME_ZONE}\n${expression}`;
    const hit = this.cache.get(key);
    const fresh = hit !== undefined && now - hit.at < INTERVAL_TTL_MS && hit.at <= now;
    if (fresh || this.budget <= 0) return hit?.seconds;
    this.budget--;
    let seconds: number | undefined;
    try {
      seconds = scheduleIntervalSeconds(compileSchedule(expression, timeZone), now);
    } catch {
      seconds = undefined;
    }
    this.cache.set(key, { seconds, at: now });
    return seconds;
  }

  get size(): number {
    return this.cache.size;
  }
}
