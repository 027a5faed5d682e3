/**
 * calculate_next_run of the Celery plan: when a recurring AI task runs next, in its own time
 * zone. Wall-clock times stay put across DST changes (a daily 08:00 task runs at 08:00 local
 * both sides of the change); a time that does not exist that day (the spring-forward gap)
 * moves forward by the gap, as luxon does. Missed occurrences are not replayed: the next run
 * is the first occurrence strictly after `after`.
 */
import { CronExpressionParser } from 'cron-parser';
import { DateTime } from 'luxon';

export type ScheduleType = 'once' | 'daily' | 'weekly' | 'monthly' | 'cron';

export interface Schedule {
  schedule_type: ScheduleType;
  /** daily {time: "HH:MM"}; weekly {time, weekday: 0-7, 0 and 7 Sunday as in cron}; monthly {time, day: 1-31}. */
  schedule_config: Record<string, unknown>;
  cron_expression: string | null;
  timezone: string;
}

/** A schedule that cannot be computed: the task's own data is wrong, no retry helps. */
export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

/** The next run after `after`, or null for a one-off task (it is done once run). */
export function nextRunAfter(schedule: Schedule, after: Date): Date | null {
  const zone = schedule.timezone;
  const now = DateTime.fromJSDate(after, { zone });
  if (!now.isValid) throw new ScheduleError(`unknown time zone "${zone}"`);
  const config = schedule.schedule_config ?? {};
  switch (schedule.schedule_type) {
    case 'once':
      return null;
    case 'daily': {
      const time = timeOf(config);
      let candidate = now.set({ ...time, second: 0, millisecond: 0 });
      if (candidate <= now) candidate = now.plus({ days: 1 }).set({ ...time, second: 0, millisecond: 0 });
      return candidate.toJSDate();
    }
    case 'weekly': {
      const time = timeOf(config);
      const weekday = integerIn(config, 'weekday', 0, 7);
      const isoWeekday = weekday === 0 ? 7 : weekday; // luxon: 1 Monday … 7 Sunday
      const ahead = (isoWeekday - now.weekday + 7) % 7;
      let candidate = now.plus({ days: ahead }).set({ ...time, second: 0, millisecond: 0 });
      if (candidate <= now) candidate = now.plus({ days: ahead + 7 }).set({ ...time, second: 0, millisecond: 0 });
      return candidate.toJSDate();
    }
    case 'monthly': {
      const time = timeOf(config);
      const day = integerIn(config, 'day', 1, 31);
      // Day 31 in a 30-day month (or 29-31 in February) is the month's last day.
      for (let months = 0; months <= 1; months++) {
        const month = now.startOf('month').plus({ months });
        const candidate = month.set({ day: Math.min(day, month.daysInMonth ?? 28), ...time, second: 0, millisecond: 0 });
        if (candidate > now) return candidate.toJSDate();
      }
      throw new ScheduleError('unreachable: a monthly occurrence always exists within two months');
    }
    case 'cron': {
      if (!schedule.cron_expression) throw new ScheduleError('schedule_type cron without cron_expression');
      try {
        return CronExpressionParser.parse(schedule.cron_expression, { currentDate: after, tz: zone }).next().toDate();
      } catch (err) {
        throw new ScheduleError(`invalid cron_expression "${schedule.cron_expression}": ${(err as Error).message}`, { cause: err });
      }
    }
    default:
      throw new ScheduleError(`unknown schedule_type "${String(schedule.schedule_type)}"`);
  }
}

function timeOf(config: Record<string, unknown>): { hour: number; minute: number } {
  const value = config.time;
  const match = typeof value === 'string' ? /^([01]?\d|2[0-3]):([0-5]\d)$/.exec(value) : null;
  if (!match) throw new ScheduleError(`schedule_config.time must be "HH:MM" (24-hour), got ${JSON.stringify(value)}`);
  return { hour: Number(match[1]), minute: Number(match[2]) };
}

function integerIn(config: Record<string, unknown>, key: string, min: number, max: number): number {
  const value = config[key];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ScheduleError(`schedule_config.${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}
